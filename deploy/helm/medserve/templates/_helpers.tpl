{{/* The chart's name, and the release's full name (63 characters: a DNS label). */}}
{{- define "medserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "medserve.fullname" -}}
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

{{- define "medserve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "medserve.labels" -}}
helm.sh/chart: {{ include "medserve.chart" . }}
app.kubernetes.io/name: {{ include "medserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels carry the component: the PostgreSQL and Redis pods share name and instance, and
without it the server's Service and Deployment would select them too.
*/}}
{{- define "medserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "medserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "medserve.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "medserve.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "medserve.postgresql.selectorLabels" -}}
app.kubernetes.io/name: {{ include "medserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: postgresql
{{- end }}

{{- define "medserve.redis.fullname" -}}
{{- printf "%s-redis" (include "medserve.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "medserve.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "medserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "medserve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "medserve.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "medserve.keysSecretName" -}}
{{- default (printf "%s-keys" (include "medserve.fullname" .)) .Values.keys.existingSecret }}
{{- end }}

{{- define "medserve.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "medserve.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{/* The Secret and key holding the PostgreSQL connection string, wherever it comes from. */}}
{{- define "medserve.store.secretRef" -}}
{{- if .Values.postgresql.enabled -}}
name: {{ include "medserve.postgresql.fullname" . }}
key: connection-string
{{- else if .Values.store.existingSecret -}}
name: {{ .Values.store.existingSecret }}
key: {{ .Values.store.existingSecretKey }}
{{- else -}}
name: {{ include "medserve.fullname" . }}-connections
key: postgres
{{- end }}
{{- end }}

{{- define "medserve.redis.secretRef" -}}
{{- if .Values.redis.enabled -}}
name: {{ include "medserve.redis.fullname" . }}
key: connection-string
{{- else if .Values.redis.existingSecret -}}
name: {{ .Values.redis.existingSecret }}
key: {{ .Values.redis.existingSecretKey }}
{{- else -}}
name: {{ include "medserve.fullname" . }}-connections
key: redis
{{- end }}
{{- end }}

{{- define "medserve.redis.wanted" -}}
{{- if or .Values.redis.enabled .Values.redis.existingSecret .Values.redis.connectionString }}true{{ end }}
{{- end }}

{{- define "medserve.replicasAtMost" -}}
{{- if .Values.autoscaling.enabled }}{{ max .Values.replicaCount .Values.autoscaling.maxReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/*
A value kept across upgrades: the given one, else what the release's Secret already holds (so a
generated key is never replaced, which would make stored data unreadable), else a new one.
lookup answers nothing under helm template, which then always generates.
*/}}
{{- define "medserve.kept" -}}
{{- $given := index . 0 }}{{- $namespace := index . 1 }}{{- $secret := index . 2 }}{{- $key := index . 3 }}{{- $generated := index . 4 }}
{{- if $given }}
{{- $given }}
{{- else }}
{{- $existing := lookup "v1" "Secret" $namespace $secret }}
{{- if and $existing (hasKey ($existing.data | default dict) $key) }}
{{- index $existing.data $key | b64dec }}
{{- else }}
{{- $generated }}
{{- end }}
{{- end }}
{{- end }}

{{/* Settings that cannot work together fail the render, with what to change. */}}
{{- define "medserve.validate" -}}
{{- $v := .Values }}
{{- $replicas := include "medserve.replicasAtMost" . | int }}
{{- if and (eq $v.store.provider "sqlite") (gt $replicas 1) }}
{{- fail (printf "store.provider is sqlite but up to %d replicas would run (replicaCount, autoscaling.maxReplicas): SQLite state lives in each replica's own data dir, so replicas would not share API keys, the registry or experiments. Use store.provider=postgres (postgresql.enabled=true or store.connectionString) for several replicas, or replicaCount=1 without autoscaling." $replicas) }}
{{- end }}
{{- if eq $v.store.provider "postgres" }}
{{- $sources := 0 }}
{{- if $v.postgresql.enabled }}{{ $sources = add1 $sources }}{{ end }}
{{- if $v.store.connectionString }}{{ $sources = add1 $sources }}{{ end }}
{{- if $v.store.existingSecret }}{{ $sources = add1 $sources }}{{ end }}
{{- if ne $sources 1 }}
{{- fail "store.provider is postgres: give exactly one database, postgresql.enabled=true (in-chart), store.connectionString or store.existingSecret" }}
{{- end }}
{{- if and (gt $replicas 1) (not $v.artifacts.volume.enabled) (not $v.artifacts.blob.enabled) }}
{{- fail "several replicas need shared artifacts: set artifacts.volume.enabled=true (a ReadWriteMany volume), or a version registered on one replica cannot be served by the others" }}
{{- end }}
{{- else if $v.postgresql.enabled }}
{{- fail "postgresql.enabled=true needs store.provider=postgres: SQLite would leave the in-chart PostgreSQL unused" }}
{{- end }}
{{- $redisSources := 0 }}
{{- if $v.redis.enabled }}{{ $redisSources = add1 $redisSources }}{{ end }}
{{- if $v.redis.connectionString }}{{ $redisSources = add1 $redisSources }}{{ end }}
{{- if $v.redis.existingSecret }}{{ $redisSources = add1 $redisSources }}{{ end }}
{{- if gt $redisSources 1 }}
{{- fail "give at most one Redis: redis.enabled=true (in-chart), redis.connectionString or redis.existingSecret" }}
{{- end }}
{{- if and (eq $v.store.notifications "redis") (eq $redisSources 0) }}
{{- fail "store.notifications is redis but no Redis is given: redis.enabled=true, redis.connectionString or redis.existingSecret (or use postgres or poll)" }}
{{- end }}
{{- if and $v.artifacts.blob.enabled (not $v.artifacts.blob.connectionStringSecret.name) }}
{{- fail "artifacts.blob.enabled needs artifacts.blob.connectionStringSecret.name: the Secret holding the storage account's connection string" }}
{{- end }}
{{- if and (or $v.tls.certificate $v.tls.key) (not (and $v.tls.certificate $v.tls.key)) }}
{{- fail "tls.certificate and tls.key go together" }}
{{- end }}
{{- end }}
