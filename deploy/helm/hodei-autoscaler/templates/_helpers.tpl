{{/* The chart's name, for app.kubernetes.io/name (and the alert rules' job label). */}}
{{- define "hodei.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of every object: the release name, unless it already holds the chart's. */}}
{{- define "hodei.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "hodei.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hodei.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hodei.labels" -}}
{{ include "hodei.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hodei
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "hodei.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "hodei.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is needed when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The port of config.http.listen: the container port, the probes and the
Service all use it. A loopback listener is refused, since neither the
kubelet's probes nor Prometheus could reach it.
*/}}
{{- define "hodei.httpPort" -}}
{{- $listen := toString .Values.config.http.listen -}}
{{- $port := regexFind ":[0-9]+$" $listen | trimPrefix ":" -}}
{{- if not $port -}}
{{- fail (printf "config.http.listen %q has no port: write HOST:PORT, e.g. 0.0.0.0:9090" $listen) -}}
{{- end -}}
{{- if or (hasPrefix "127." $listen) (hasPrefix "localhost:" $listen) (hasPrefix "[::1]:" $listen) -}}
{{- fail (printf "config.http.listen %q is a loopback address: the probes and the metrics Service reach the pod on its own address, so listen on 0.0.0.0:%s" $listen $port) -}}
{{- end -}}
{{- $port -}}
{{- end -}}

{{/*
config.yaml: .Values.config, with every kubernetes pool's namespace set to
workers.namespace when it names none. A pool naming another namespace is
refused: the chart grants the daemon pods in workers.namespace only.
*/}}
{{- define "hodei.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $ns := .Values.workers.namespace -}}
{{- $pools := list -}}
{{- range $i, $pool := $cfg.pools -}}
{{- $p := $pool -}}
{{- if eq (toString $p.provider) "kubernetes" -}}
{{- $k := $p.kubernetes | default dict -}}
{{- $own := $k.namespace | default "" -}}
{{- if and $own (ne $own $ns) -}}
{{- fail (printf "config.pools[%d] (%s) runs its pods in namespace %q, but the chart lets the daemon act only in workers.namespace %q: remove kubernetes.namespace or set workers.namespace" $i (toString $p.name) $own $ns) -}}
{{- end -}}
{{- $_ := set $k "namespace" $ns -}}
{{- $_ := set $p "kubernetes" $k -}}
{{- end -}}
{{- $pools = append $pools $p -}}
{{- end -}}
{{- $_ := set $cfg "pools" $pools -}}
{{- toYaml $cfg -}}
{{- end -}}
