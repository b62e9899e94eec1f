//! Personal names: whitespace, allowed characters, capitals, and family-name particles.

/// Family-name particles kept in lower case.
pub const PARTICLES: &[&str] = &[
    "van", "der", "den", "de", "het", "ten", "ter", "von", "zu", "la", "le", "du", "des", "del",
    "della", "di", "da", "dos", "das", "y",
];

/// Normalises a personal name; `family` lower-cases particles. `Err` says why it is not a name.
pub fn normalise_name(raw: &str, family: bool) -> Result<String, String> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    if words.is_empty() {
        return Err("is empty".into());
    }
    let joined = words.join(" ");
    if joined.chars().count() > 100 {
        return Err("is longer than 100 characters".into());
    }
    // The reason names the rule, never the character: it is logged, and a name is personal.
    if joined
        .chars()
        .any(|ch| !(ch.is_alphabetic() || " -'.".contains(ch)))
    {
        return Err("may contain only letters, spaces, - ' and .".into());
    }
    if !joined.chars().any(char::is_alphabetic) {
        return Err("has no letters".into());
    }
    let all_particles = words
        .iter()
        .all(|w| PARTICLES.contains(&w.to_lowercase().as_str()));
    let out: Vec<String> = words
        .iter()
        .map(|w| {
            let lower = w.to_lowercase();
            if family && !all_particles && PARTICLES.contains(&lower.as_str()) {
                lower
            } else {
                capitalise(&lower)
            }
        })
        .collect();
    Ok(out.join(" "))
}

fn capitalise(lower: &str) -> String {
    let mut out = String::with_capacity(lower.len());
    let mut up = true;
    for ch in lower.chars() {
        if up && ch.is_alphabetic() {
            out.extend(ch.to_uppercase());
            up = false;
        } else {
            out.push(ch);
        }
        if ch == '-' || ch == '\'' {
            up = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        let cases: &[(&str, bool, Result<&str, &str>)] = &[
            ("anna", false, Ok("Anna")),
            ("  ANNA   maria ", false, Ok("Anna Maria")),
            ("van der berg", true, Ok("van der Berg")),
            ("Van Der Berg", true, Ok("van der Berg")),
            ("van", true, Ok("Van")),
            ("de la cruz", true, Ok("de la Cruz")),
            ("o'brien-smith", true, Ok("O'Brien-Smith")),
            ("josé", false, Ok("José")),
            ("van", false, Ok("Van")),
            ("", false, Err("empty")),
            ("   ", false, Err("empty")),
            ("R2D2", false, Err("only letters, spaces")),
            ("--", false, Err("no letters")),
        ];
        for (raw, family, want) in cases {
            let got = normalise_name(raw, *family);
            match want {
                Ok(n) => assert_eq!(got.as_deref(), Ok(*n), "{raw}"),
                Err(part) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(part)),
                    "{raw}: {got:?}"
                ),
            }
        }
    }
}
