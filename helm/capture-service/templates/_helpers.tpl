{{- define "capture-service.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "capture-service.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "capture-service.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "capture-service.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "capture-service.databaseSecret" -}}
{{- .Values.database.existingSecret | default (include "capture-service.fullname" .) -}}
{{- end -}}

{{/* Environment shared by the server and the migration job. */}}
{{- define "capture-service.env" -}}
- name: CAPTURE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "capture-service.databaseSecret" . }}
      key: CAPTURE_DATABASE_URL
- name: CAPTURE_LOG_FORMAT
  value: {{ .Values.log.format | quote }}
- name: CAPTURE_LOG
  value: {{ .Values.log.filter | quote }}
{{- end -}}
