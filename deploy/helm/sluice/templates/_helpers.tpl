{{/* Names and labels shared by every manifest of the chart. */}}

{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "sluice.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "sluice.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The agent's configuration: the chart's defaults with .Values.config merged over them.
*/}}
{{- define "sluice.config" -}}
{{- $defaults := dict
  "node_name" "${NODE_NAME}"
  "state_dir" "/var/lib/sluice"
  "shutdown_timeout" "25s"
  "elasticsearch" (dict "endpoints" .Values.elasticsearch.hosts)
  "telemetry" (dict "listen" (printf "0.0.0.0:%v" .Values.metrics.port))
-}}
{{- if .Values.clusterName }}
{{- $_ := set $defaults "cluster_name" .Values.clusterName }}
{{- end }}
{{- $config := mustMergeOverwrite $defaults (deepCopy .Values.config) -}}
{{- if not $config.elasticsearch.endpoints }}
{{- fail "elasticsearch.hosts (or config.elasticsearch.endpoints) must name at least one endpoint" }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
shutdown_timeout in whole seconds (rounded up), from the agent's duration syntax: 500ms, 25s, 2m.
*/}}
{{- define "sluice.shutdownSeconds" -}}
{{- $config := include "sluice.config" . | fromYaml -}}
{{- $t := toString $config.shutdown_timeout -}}
{{- if regexMatch "^[0-9]+ms$" $t -}}
{{- div (add (trimSuffix "ms" $t | atoi) 999) 1000 -}}
{{- else if regexMatch "^[0-9]+s$" $t -}}
{{- trimSuffix "s" $t | atoi -}}
{{- else if regexMatch "^[0-9]+m$" $t -}}
{{- mul (trimSuffix "m" $t | atoi) 60 -}}
{{- else -}}
{{- fail (printf "config.shutdown_timeout %q: the chart understands <n>ms, <n>s or <n>m" $t) -}}
{{- end -}}
{{- end }}
