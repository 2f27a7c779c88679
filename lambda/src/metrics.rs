//! The core's metric events (`flowline_core::metrics`) as CloudWatch Embedded Metric Format:
//! one JSON line per data point on stdout, which CloudWatch Logs turns into a metric of the
//! namespace `POWERTOOLS_METRICS_NAMESPACE` (default `Flowline`) with the dimension `Service`
//! (`POWERTOOLS_SERVICE_NAME`, default `flowline`; the template sets the stack's name), plus
//! the event's own breakdown (`Cause`, `Scope`) as a second dimension set — so an alarm can
//! watch the total and a graph can split it. No API call, nothing added to a request's time.

use std::io::Write;

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;

pub const DEFAULT_NAMESPACE: &str = "Flowline";
pub const DEFAULT_SERVICE: &str = "flowline";

/// Writes each metric event as an EMF line to `writer`.
pub struct EmfLayer<W> {
    writer: W,
    namespace: String,
    service: String,
}

impl<W> EmfLayer<W> {
    pub fn new(writer: W, namespace: &str, service: &str) -> Self {
        Self {
            writer,
            namespace: namespace.to_owned(),
            service: service.to_owned(),
        }
    }

    /// Namespace and service from the Powertools variables the template sets.
    pub fn from_env(writer: W) -> Self {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Self::new(
            writer,
            &var("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE),
            &var("POWERTOOLS_SERVICE_NAME", DEFAULT_SERVICE),
        )
    }
}

/// The fields of one metric event.
#[derive(Default)]
struct MetricFields {
    metric: Option<String>,
    value: Option<f64>,
    unit: Option<String>,
    dimension: Option<String>,
}

impl Visit for MetricFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "value" {
            self.value = Some(value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_f64(field, value as f64);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_f64(field, value as f64);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "metric" => &mut self.metric,
            "unit" => &mut self.unit,
            "dimension" => &mut self.dimension,
            _ => return,
        };
        *slot = Some(value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// One EMF document: `metric` = `value` (`unit`) at `timestamp_ms`, with the dimension
/// `Service`, and `Service` + the breakdown's name when `dimension` is `"Name=value"`.
pub fn emf_document(
    namespace: &str,
    service: &str,
    metric: &str,
    value: f64,
    unit: &str,
    dimension: Option<&str>,
    timestamp_ms: i64,
) -> Value {
    let mut dimension_sets = vec![json!(["Service"])];
    let mut document = Map::new();
    document.insert("Service".to_owned(), json!(service));
    if let Some((name, dimension_value)) = dimension.and_then(|text| text.split_once('=')) {
        dimension_sets.push(json!(["Service", name]));
        document.insert(name.to_owned(), json!(dimension_value));
    }
    document.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimension_sets,
                "Metrics": [{"Name": metric, "Unit": unit}],
            }],
        }),
    );
    document.insert(metric.to_owned(), json!(value));
    Value::Object(document)
}

impl<S, W> Layer<S> for EmfLayer<W>
where
    S: tracing::Subscriber,
    W: for<'writer> MakeWriter<'writer> + 'static,
{
    fn on_event(&self, event: &tracing::Event<'_>, _context: Context<'_, S>) {
        if event.metadata().target() != flowline_core::metrics::TARGET {
            return;
        }
        let mut fields = MetricFields::default();
        event.record(&mut fields);
        let (Some(metric), Some(value)) = (fields.metric, fields.value) else {
            return;
        };
        let document = emf_document(
            &self.namespace,
            &self.service,
            &metric,
            value,
            fields.unit.as_deref().unwrap_or("None"),
            fields.dimension.as_deref(),
            jiff::Timestamp::now().as_millisecond(),
        );
        let mut line = document.to_string();
        line.push('\n');
        // A metric that cannot be written is lost, never a failed request.
        let _ = self.writer.make_writer().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breakdown_is_a_second_dimension_set() {
        let document = emf_document(
            "Flowline",
            "prod",
            "CallbacksFailed",
            1.0,
            "Count",
            Some("Cause=EXPIRED"),
            1_800_000_000_000,
        );
        assert_eq!(
            document,
            json!({
                "_aws": {
                    "Timestamp": 1_800_000_000_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Flowline",
                        "Dimensions": [["Service"], ["Service", "Cause"]],
                        "Metrics": [{"Name": "CallbacksFailed", "Unit": "Count"}],
                    }],
                },
                "Service": "prod",
                "Cause": "EXPIRED",
                "CallbacksFailed": 1.0,
            })
        );
    }
}
