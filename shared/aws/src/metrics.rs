//! CloudWatch metrics in the embedded metric format: one JSON line on stdout per value, which
//! Lambda's log pipeline turns into a metric in namespace `Steadfast` (no API call, no cost per
//! call). The template's alarms watch these.

use serde_json::json;

pub const NAMESPACE: &str = "Steadfast";

/// The EMF line for one value of `metric` with one dimension `dimension=value`.
pub fn line(metric: &str, unit: &str, value: f64, dimension: (&str, &str), now_ms: u64) -> String {
    let (dim, dim_value) = dimension;
    json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[dim]],
                "Metrics": [{"Name": metric, "Unit": unit}],
            }],
        },
        dim: dim_value,
        metric: value,
    })
    .to_string()
}

/// Writes one metric value to stdout (see [`line`]).
pub fn emit(metric: &str, unit: &str, value: f64, dimension: (&str, &str)) {
    println!("{}", line(metric, unit, value, dimension, crate::now_ms()));
}

/// Records that reached `Failed` in `pipeline` (`outbox` or `inbox`).
pub fn records_failed(pipeline: &str, count: u32) {
    if count > 0 {
        emit(
            "RecordsFailed",
            "Count",
            f64::from(count),
            ("Pipeline", pipeline),
        );
    }
}

/// How long the gate of `target` has been halted (0 once it flows again).
pub fn gate_halted_seconds(target: &str, seconds: u64) {
    emit(
        "GateHaltedSeconds",
        "Seconds",
        seconds as f64,
        ("Target", target),
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_emf_line_names_its_namespace_dimension_and_value() {
        let l: serde_json::Value = serde_json::from_str(&super::line(
            "RecordsFailed",
            "Count",
            2.0,
            ("Pipeline", "inbox"),
            1000,
        ))
        .unwrap();
        assert_eq!(l["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Steadfast");
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Pipeline"
        );
        assert_eq!(l["Pipeline"], "inbox");
        assert_eq!(l["RecordsFailed"], 2.0);
        assert_eq!(l["_aws"]["Timestamp"], 1000);
    }
}
