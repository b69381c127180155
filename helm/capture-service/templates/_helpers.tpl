{{- define "capture-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "capture-service.fullname" -}}
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

{{- define "capture-service.labels" -}}
{{ include "capture-service.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The server's pods. The migration Job's pods carry other labels, so that the Service, the
PodDisruptionBudget and the NetworkPolicy never select them. */}}
{{- define "capture-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "capture-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "capture-service.migrateSelectorLabels" -}}
app.kubernetes.io/name: {{ include "capture-service.name" . }}-migrate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: migrate
{{- end -}}

{{- define "capture-service.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "capture-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "capture-service.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* "true" when the database is SQLite (as far as the chart can see: database.url). */}}
{{- define "capture-service.sqlite" -}}
{{- if hasPrefix "sqlite:" (.Values.database.url | default "" | trim) -}}true{{- end -}}
{{- end -}}

{{/* "true" when the migration Job runs (not with SQLite: the file lives in the pod's volume). */}}
{{- define "capture-service.migrationJob" -}}
{{- if and .Values.migrations.job (not (include "capture-service.sqlite" .)) -}}true{{- end -}}
{{- end -}}

{{- define "capture-service.hasConfigFile" -}}
{{- with .Values.configFile -}}
{{- if or .content .existingSecret .existingConfigMap -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* Refuses values the service cannot run with. Included by the Deployment. */}}
{{- define "capture-service.validate" -}}
{{- $v := .Values -}}
{{- $sqlite := include "capture-service.sqlite" . -}}
{{- if not (or $v.database.url $v.database.existingSecret (include "capture-service.hasConfigFile" .)) -}}
{{- fail "set database.url (postgres://...) or database.existingSecret (or database_url in configFile)" -}}
{{- end -}}
{{- if and $sqlite (gt (int $v.replicaCount) 1) (not $v.autoscaling.enabled) -}}
{{- fail (printf "database.url is SQLite, which is single-writer per file: replicaCount must be 1 (it is %d); use PostgreSQL for more replicas" (int $v.replicaCount)) -}}
{{- end -}}
{{- if and $sqlite $v.autoscaling.enabled -}}
{{- fail "database.url is SQLite, which is single-writer per file: autoscaling.enabled must be false; use PostgreSQL to autoscale" -}}
{{- end -}}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) -}}
{{- fail "autoscaling.minReplicas is greater than autoscaling.maxReplicas" -}}
{{- end -}}
{{- $sources := 0 -}}
{{- range (list $v.configFile.content $v.configFile.existingSecret $v.configFile.existingConfigMap) -}}
{{- if . -}}{{- $sources = add1 $sources -}}{{- end -}}
{{- end -}}
{{- if gt $sources 1 -}}
{{- fail "set at most one of configFile.content, configFile.existingSecret and configFile.existingConfigMap" -}}
{{- end -}}
{{- if and $v.podDisruptionBudget.enabled (not (kindIs "invalid" $v.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" $v.podDisruptionBudget.maxUnavailable)) -}}
{{- fail "set only one of podDisruptionBudget.minAvailable and podDisruptionBudget.maxUnavailable (the other null)" -}}
{{- end -}}
{{- if and $v.ingress.enabled (not $v.ingress.host) -}}
{{- fail "ingress.enabled needs ingress.host (the name providers deliver webhooks to)" -}}
{{- end -}}
{{- if and $v.networkPolicy.enabled (not $sqlite) (not $v.networkPolicy.database.to) -}}
{{- fail "networkPolicy.enabled needs networkPolicy.database.to (ipBlock CIDRs or selectors of the database), or the pods cannot reach PostgreSQL" -}}
{{- end -}}
{{- range $name, $value := $v.settings -}}
{{- if has $name (list "CAPTURE_GRPC_ADDR" "CAPTURE_HTTP_ADDR" "CAPTURE_SANDBOX" "CAPTURE_MIGRATE_ON_START" "CAPTURE_DEV_API_KEY_FILE" "CAPTURE_SHUTDOWN_GRACE_SECONDS" "CAPTURE_PROVIDER_TIMEOUT_SECONDS" "CAPTURE_PROVIDER_MAX_RETRIES" "CAPTURE_LOG" "CAPTURE_LOG_FORMAT" "CAPTURE_OTLP_ENDPOINT" "CAPTURE_CONFIG") -}}
{{- fail (printf "settings.%s is set by the chart from its own value (see values.yaml)" $name) -}}
{{- end -}}
{{- if regexMatch "DATABASE_URL|API_KEYS|SECRET|_KEY|PASSWORD|TOKEN|ASSERTION" $name -}}
{{- fail (printf "settings.%s looks like a secret; settings go to a ConfigMap: use database/apiKeys/providers.existingSecret instead" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Keys of the chart's own Secret (a release object): only what no existingSecret provides. */}}
{{- define "capture-service.secretData" -}}
{{- if and .Values.database.url (not .Values.database.existingSecret) }}
CAPTURE_DATABASE_URL: {{ .Values.database.url | quote }}
{{- end }}
{{- if and .Values.apiKeys.digests (not .Values.apiKeys.existingSecret) }}
CAPTURE_API_KEYS: {{ .Values.apiKeys.digests | quote }}
{{- end }}
{{- if .Values.configFile.content }}
capture.toml: {{ .Values.configFile.content | quote }}
{{- end }}
{{- end -}}

{{/* Keys of the migration hook's own Secret: what `migrate` needs before the release's Secret
exists (pre-install) or while it still holds the previous values (pre-upgrade). */}}
{{- define "capture-service.migrateSecretData" -}}
{{- if and .Values.database.url (not .Values.database.existingSecret) }}
CAPTURE_DATABASE_URL: {{ .Values.database.url | quote }}
{{- end }}
{{- if .Values.configFile.content }}
capture.toml: {{ .Values.configFile.content | quote }}
{{- end }}
{{- end -}}

{{/* Secret env entries. Argument: dict "root" $ "secret" <name of the chart-managed Secret>
"apiKeys" <bool>. */}}
{{- define "capture-service.secretEnv" -}}
{{- $v := .root.Values -}}
{{- if $v.database.existingSecret }}
- name: CAPTURE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.database.existingSecret }}
      key: {{ $v.database.existingSecretKey }}
{{- else if $v.database.url }}
- name: CAPTURE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: CAPTURE_DATABASE_URL
{{- end }}
{{- if .apiKeys }}
{{- if $v.apiKeys.existingSecret }}
- name: CAPTURE_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ $v.apiKeys.existingSecret }}
      key: {{ $v.apiKeys.existingSecretKey }}
{{- else if $v.apiKeys.digests }}
- name: CAPTURE_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: CAPTURE_API_KEYS
{{- end }}
{{- end }}
{{- end -}}

{{/* The config file's volume. Argument: dict "root" $ "secret" <chart-managed Secret name>. */}}
{{- define "capture-service.configFileVolume" -}}
{{- $c := .root.Values.configFile -}}
{{- if $c.existingConfigMap }}
- name: config-file
  configMap:
    name: {{ $c.existingConfigMap }}
    items:
      - key: {{ $c.key }}
        path: capture.toml
{{- else if or $c.existingSecret $c.content }}
- name: config-file
  secret:
    secretName: {{ $c.existingSecret | default .secret }}
    # 0440: readable by the pod's group (fsGroup), nobody else.
    defaultMode: 288
    items:
      - key: {{ ternary $c.key "capture.toml" (not (empty $c.existingSecret)) }}
        path: capture.toml
{{- end }}
{{- end -}}

{{- define "capture-service.configFilePath" -}}
{{- printf "%s/capture.toml" (.Values.configFile.mountPath | trimSuffix "/") -}}
{{- end -}}

{{/* PromQL label matchers selecting this release's series. */}}
{{- define "capture-service.metricsSelector" -}}
{{- if .Values.prometheusRule.selector -}}
{{- .Values.prometheusRule.selector -}}
{{- else -}}
{{- printf "namespace=%q, service=%q" .Release.Namespace (include "capture-service.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* NetworkPolicy egress rules to the database (unless SQLite) and DNS. */}}
{{- define "capture-service.egressDatabaseAndDns" -}}
{{- if not (include "capture-service.sqlite" .) }}
- to:
    {{- toYaml .Values.networkPolicy.database.to | nindent 4 }}
  ports:
    - port: {{ .Values.database.port }}
      protocol: TCP
{{- end }}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  {{- with .Values.networkPolicy.dns.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* CAPTURE_CLIENT_CERT_TENANTS: dns-name=tenant, comma-separated. */}}
{{- define "capture-service.clientCertTenants" -}}
{{- $entries := list -}}
{{- range .Values.grpcTls.clientCertificates -}}
{{- $entries = append $entries (printf "%s=%s" .dnsName .tenant) -}}
{{- end -}}
{{- join "," $entries -}}
{{- end }}
