// The Prometheus Operator's CustomResourceDefinitions (ServiceMonitor,
// PrometheusRule), which its module ships as YAML: the Helm chart's
// objects for the operator are applied against them in the tests. Nothing
// is built from this module.
module github.com/hodei/hodei-autoscaler/tools/realtools/prometheus-operator

go 1.26.0

require github.com/prometheus-operator/prometheus-operator v0.85.0
