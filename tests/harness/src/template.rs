//! Reads `infra/template.yaml` and resolves the intrinsic functions it uses (`Ref`, `GetAtt`,
//! `Sub`, `If`, `Not`, `Equals`, in short `!Tag` and long `Fn::` forms), so the local stack is
//! provisioned from the same definitions as a deployment.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context as _, Result};
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};

pub struct Template {
    pub root: Value,
}

/// What `Ref` and `GetAtt … .Arn` give for one resource.
#[derive(Debug, Clone, Default)]
pub struct Physical {
    pub reference: String,
    pub arn: String,
    /// Other `GetAtt` attributes known once the resource exists (e.g. a table's `StreamArn`).
    pub attrs: HashMap<String, String>,
}

/// Everything needed to resolve expressions.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub stack_name: String,
    pub region: String,
    pub account: String,
    pub parameters: HashMap<String, String>,
    pub resources: HashMap<String, Physical>,
}

impl Template {
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let root: Value =
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Template { root })
    }

    pub fn resources(&self) -> Vec<(String, &Value)> {
        self.root
            .get("Resources")
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v)))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn resources_of(&self, kind: &str) -> Vec<(String, &Value)> {
        self.resources()
            .into_iter()
            .filter(|(_, v)| v.get("Type").and_then(Value::as_str) == Some(kind))
            .collect()
    }

    /// Parameter defaults, overridden by `overrides`; a parameter with neither is an error.
    pub fn parameters(
        &self,
        overrides: &HashMap<String, String>,
    ) -> Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        if let Some(m) = self.root.get("Parameters").and_then(Value::as_mapping) {
            for (k, v) in m {
                let name = k.as_str().unwrap_or_default().to_owned();
                let value = match overrides.get(&name) {
                    Some(o) => o.clone(),
                    None => match v.get("Default") {
                        Some(d) => scalar(d)
                            .ok_or_else(|| anyhow!("parameter {name}: default is not a scalar"))?,
                        None => {
                            bail!("template parameter {name} has no default and no value was given")
                        }
                    },
                };
                out.insert(name, value);
            }
        }
        for k in overrides.keys() {
            if !out.contains_key(k) {
                bail!("parameter {k} is not declared in the template");
            }
        }
        Ok(out)
    }

    pub fn global_env(&self) -> Option<&Value> {
        self.root
            .get("Globals")?
            .get("Function")?
            .get("Environment")?
            .get("Variables")
    }

    pub fn condition(&self, name: &str, ctx: &Context) -> Result<bool> {
        let c = self
            .root
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| anyhow!("condition {name} is not defined"))?;
        truthy(&resolve(c, ctx, self)?)
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn truthy(v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => Ok(s == "true"),
        other => bail!("not a boolean: {other:?}"),
    }
}

fn tag_name(tag: &Tag) -> String {
    tag.to_string().trim_start_matches('!').to_owned()
}

fn reference(name: &str, ctx: &Context) -> Result<String> {
    Ok(match name {
        "AWS::StackName" => ctx.stack_name.clone(),
        "AWS::Region" => ctx.region.clone(),
        "AWS::AccountId" => ctx.account.clone(),
        "AWS::Partition" => "aws".into(),
        other => match (ctx.parameters.get(other), ctx.resources.get(other)) {
            (Some(p), _) => p.clone(),
            (None, Some(r)) => r.reference.clone(),
            (None, None) => bail!("Ref {other}: no such parameter or provisioned resource"),
        },
    })
}

fn get_att(spec: &str, ctx: &Context) -> Result<String> {
    let (logical, attr) = spec
        .split_once('.')
        .ok_or_else(|| anyhow!("GetAtt {spec}: expected Resource.Attribute"))?;
    let r = ctx
        .resources
        .get(logical)
        .ok_or_else(|| anyhow!("GetAtt {spec}: resource not provisioned"))?;
    match attr {
        "Arn" => Ok(r.arn.clone()),
        other if r.attrs.contains_key(other) => Ok(r.attrs[other].clone()),
        other => bail!("GetAtt {spec}: attribute {other} not supported locally"),
    }
}

fn substitute(s: &str, ctx: &Context) -> Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| anyhow!("Sub {s}: unclosed ${{"))?
            + start;
        let name = &rest[start + 2..end];
        out.push_str(&if name.contains('.') {
            get_att(name, ctx)?
        } else {
            reference(name, ctx)?
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn intrinsic(name: &str, arg: &Value, ctx: &Context, t: &Template) -> Result<Value> {
    let arg = resolve(arg, ctx, t)?;
    Ok(match name {
        "Ref" => Value::String(reference(
            arg.as_str().ok_or_else(|| anyhow!("Ref needs a name"))?,
            ctx,
        )?),
        "GetAtt" | "Fn::GetAtt" => {
            let spec = match &arg {
                Value::String(s) => s.clone(),
                Value::Sequence(parts) => parts
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("."),
                other => bail!("GetAtt: unexpected {other:?}"),
            };
            Value::String(get_att(&spec, ctx)?)
        }
        "Sub" | "Fn::Sub" => Value::String(substitute(
            arg.as_str().ok_or_else(|| anyhow!("Sub needs a string"))?,
            ctx,
        )?),
        "If" | "Fn::If" => {
            let parts = arg
                .as_sequence()
                .filter(|p| p.len() == 3)
                .ok_or_else(|| anyhow!("If needs [cond, a, b]"))?;
            let cond = t.condition(parts[0].as_str().unwrap_or_default(), ctx)?;
            parts[if cond { 1 } else { 2 }].clone()
        }
        "Not" | "Fn::Not" => Value::Bool(!truthy(
            arg.as_sequence()
                .and_then(|s| s.first())
                .ok_or_else(|| anyhow!("Not needs [x]"))?,
        )?),
        "Equals" | "Fn::Equals" => {
            let parts = arg
                .as_sequence()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| anyhow!("Equals needs [a, b]"))?;
            Value::Bool(scalar(&parts[0]) == scalar(&parts[1]))
        }
        other => bail!("intrinsic {other} is not supported locally"),
    })
}

/// Resolves every intrinsic function inside `v`.
pub fn resolve(v: &Value, ctx: &Context, t: &Template) -> Result<Value> {
    Ok(match v {
        Value::Tagged(tagged) => {
            let TaggedValue { tag, value } = tagged.as_ref();
            intrinsic(&tag_name(tag), value, ctx, t)?
        }
        Value::Mapping(m) => {
            if m.len() == 1 {
                if let Some((Value::String(k), arg)) = m.iter().next() {
                    if k == "Ref" || k.starts_with("Fn::") {
                        return intrinsic(k, arg, ctx, t);
                    }
                }
            }
            let mut out = Mapping::new();
            for (k, val) in m {
                out.insert(k.clone(), resolve(val, ctx, t)?);
            }
            Value::Mapping(out)
        }
        Value::Sequence(s) => Value::Sequence(
            s.iter()
                .map(|x| resolve(x, ctx, t))
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    })
}

/// A resolved scalar as a string (numbers and booleans too).
pub fn as_string(v: &Value) -> Option<String> {
    scalar(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_forms_the_template_uses() {
        let t = Template {
            root: serde_yaml::from_str(
                "Parameters: {P: {Type: String, Default: x}}\nConditions: {HasP: !Not [!Equals [!Ref P, \"\"]]}\nResources: {}",
            )
            .unwrap(),
        };
        let mut ctx = Context {
            stack_name: "s1".into(),
            region: "r".into(),
            account: "1".into(),
            ..Default::default()
        };
        ctx.parameters = t.parameters(&HashMap::new()).unwrap();
        ctx.resources.insert(
            "Q".into(),
            Physical {
                reference: "url".into(),
                arn: "arn:q".into(),
                ..Default::default()
            },
        );
        let v: Value = serde_yaml::from_str(
            "a: !Sub \"${AWS::StackName}-orders\"\nb: !GetAtt Q.Arn\nc: {Ref: Q}\nd: !If [HasP, !Ref P, none]\ne: !Sub \"${Q.Arn}/x\"",
        )
        .unwrap();
        let r = resolve(&v, &ctx, &t).unwrap();
        assert_eq!(r["a"], Value::String("s1-orders".into()));
        assert_eq!(r["b"], Value::String("arn:q".into()));
        assert_eq!(r["c"], Value::String("url".into()));
        assert_eq!(r["d"], Value::String("x".into()));
        assert_eq!(r["e"], Value::String("arn:q/x".into()));
        assert!(t
            .parameters(&HashMap::from([("Nope".into(), "1".into())]))
            .is_err());
    }

    #[test]
    fn the_real_template_parses_and_declares_pipeline_a() {
        let t = Template::load(&crate::workspace_root().join("infra/template.yaml")).unwrap();
        let functions: Vec<String> = t
            .resources_of("AWS::Serverless::Function")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for f in [
            "ProcessorFunction",
            "CloseFunction",
            "OpenFunction",
            "BackoffFunction",
        ] {
            assert!(functions.contains(&f.to_owned()), "{f} missing");
        }
    }
}
