{{/* Names and labels shared by every template of the Souk chart. */}}

{{- define "souk.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "souk.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "souk.headless" -}}
{{- printf "%s-headless" (include "souk.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "souk.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "souk.selectorLabels" -}}
app.kubernetes.io/name: {{ include "souk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "souk.labels" -}}
helm.sh/chart: {{ include "souk.chart" . }}
{{ include "souk.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: souk
{{- end }}

{{- define "souk.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "souk.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "souk.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret whose keys are mounted as files: the operator's, or the chart's own. */}}
{{- define "souk.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if .Values.secrets.create }}
{{- printf "%s-secrets" (include "souk.fullname" .) }}
{{- end }}
{{- end }}

{{/* Where Souk finds each secret file, by the source that provides it. */}}
{{- define "souk.secretFile" -}}
{{- $root := index . 0 }}{{- $name := index . 1 }}
{{- if and $root.Values.vault.enabled (hasKey $root.Values.vault.files $name) }}
{{- printf "/vault/secrets/%s" $name }}
{{- else if include "souk.secretName" $root }}
{{- printf "/var/run/secrets/souk/%s" $name }}
{{- end }}
{{- end }}
