{{/* Names ---------------------------------------------------------------------------------------------- */}}

{{- define "dljobs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object name; short enough for the suffixes KubeRay adds to the Ray cluster's name. */}}
{{- define "dljobs.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 36 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 36 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 36 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "dljobs.postgresqlName" -}}{{ include "dljobs.fullname" . }}-postgresql{{- end -}}
{{- define "dljobs.rayClusterName" -}}{{ include "dljobs.fullname" . }}-ray{{- end -}}
{{- define "dljobs.rayServiceAccountName" -}}{{ include "dljobs.fullname" . }}-ray{{- end -}}
{{- define "dljobs.rayJobTemplateName" -}}{{ include "dljobs.fullname" . }}-rayjob-template{{- end -}}

{{- define "dljobs.adminSecretName" -}}
{{- default (printf "%s-admin-token" (include "dljobs.fullname" .)) .Values.controller.bootstrapAdmin.existingSecret -}}
{{- end -}}
{{- define "dljobs.adminSecretKey" -}}
{{- if .Values.controller.bootstrapAdmin.existingSecret -}}{{ .Values.controller.bootstrapAdmin.secretKey }}{{- else -}}token{{- end -}}
{{- end -}}

{{/* KubeRay reads the token from key auth_token (authOptions.secretName); so does the controller. */}}
{{- define "dljobs.rayAuthSecretName" -}}
{{- default (printf "%s-ray-auth" (include "dljobs.fullname" .)) .Values.ray.auth.existingSecret -}}
{{- end -}}

{{- define "dljobs.databaseSecretName" -}}
{{- if eq .Values.database.mode "external" -}}{{ .Values.database.external.existingSecret }}{{- else -}}{{ include "dljobs.postgresqlName" . }}{{- end -}}
{{- end -}}
{{- define "dljobs.databaseUrlKey" -}}
{{- if eq .Values.database.mode "external" -}}{{ .Values.database.external.urlKey }}{{- else -}}url{{- end -}}
{{- end -}}

{{/* URLs --------------------------------------------------------------------------------------------------- */}}

{{- define "dljobs.controllerUrl" -}}
{{- if .Values.controller.publicUrl -}}
{{- .Values.controller.publicUrl -}}
{{- else -}}
{{- printf "http://%s.%s.svc.cluster.local:%d" (include "dljobs.fullname" .) .Release.Namespace (int .Values.controller.service.port) -}}
{{- end -}}
{{- end -}}

{{/* KubeRay names the head Service <cluster>-head-svc. */}}
{{- define "dljobs.rayAddress" -}}
{{- printf "http://%s-head-svc.%s.svc.cluster.local:8265" (include "dljobs.rayClusterName" .) .Release.Namespace -}}
{{- end -}}

{{/* Serve's HTTP proxy, as the controller reaches it: the head Service's serve port unless serving.httpUrl. */}}
{{- define "dljobs.serveUrl" -}}
{{- if .Values.serving.httpUrl -}}
{{- .Values.serving.httpUrl -}}
{{- else -}}
{{- printf "http://%s-head-svc.%s.svc.cluster.local:%d" (include "dljobs.rayClusterName" .) .Release.Namespace (int .Values.serving.port) -}}
{{- end -}}
{{- end -}}

{{- define "dljobs.storageUrl" -}}
{{- $prefix := trimAll "/" .Values.storage.s3.prefix -}}
{{- if $prefix -}}s3://{{ .Values.storage.s3.bucket }}/{{ $prefix }}{{- else -}}s3://{{ .Values.storage.s3.bucket }}{{- end -}}
{{- end -}}

{{/* Labels ------------------------------------------------------------------------------------------------- */}}

{{- define "dljobs.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "dljobs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dljobs
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: include "dljobs.selectorLabels" (list . "controller") */}}
{{- define "dljobs.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "dljobs.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Pods that may open connections to PostgreSQL carry this label (see the NetworkPolicy). */}}
{{- define "dljobs.databaseClientLabel" -}}
dljobs.io/database-client: "true"
{{- end -}}

{{/* Images ------------------------------------------------------------------------------------------------- */}}

{{- define "dljobs.controllerImage" -}}
{{- printf "%s:%s" .Values.controller.image.repository (default .Chart.AppVersion .Values.controller.image.tag) -}}
{{- end -}}
{{- define "dljobs.rayImage" -}}
{{- printf "%s:%s" .Values.ray.image.repository (default .Chart.AppVersion .Values.ray.image.tag) -}}
{{- end -}}

{{/* Security ----------------------------------------------------------------------------------------------- */}}

{{/* Pod-level context for a non-root user id: include "dljobs.podSecurityContext" 10001 */}}
{{- define "dljobs.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "dljobs.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* A secret value kept across upgrades: the live Secret's value when there is one, else a new random one.
     include "dljobs.stableSecretValue" (dict "ctx" . "secret" NAME "key" KEY) -> the plain value */}}
{{- define "dljobs.stableSecretValue" -}}
{{- $live := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- if and $live $live.data (hasKey $live.data .key) -}}
{{- index $live.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 48 -}}
{{- end -}}
{{- end -}}

{{/* Environment --------------------------------------------------------------------------------------------- */}}

{{/* S3 settings for Ray pods (checkpoints, models, code bundles). */}}
{{- define "dljobs.rayS3Env" -}}
{{- with .Values.storage.s3.endpointUrl }}
- name: DLJOBS_S3_ENDPOINT_URL
  value: {{ . | quote }}
- name: AWS_ENDPOINT_URL_S3
  value: {{ . | quote }}
{{- end }}
{{- with .Values.storage.s3.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- include "dljobs.awsCredentialsEnv" . }}
{{- end -}}

{{- define "dljobs.awsCredentialsEnv" -}}
{{- if eq .Values.storage.s3.credentials.mode "secret" }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storage.s3.credentials.existingSecret }}
      key: {{ .Values.storage.s3.credentials.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storage.s3.credentials.existingSecret }}
      key: {{ .Values.storage.s3.credentials.secretAccessKeyKey }}
{{- end }}
{{- end -}}

{{/* Ray token authentication (KubeRay also injects these from authOptions; set here so the pods say it). */}}
{{- define "dljobs.rayAuthEnv" -}}
- name: RAY_AUTH_MODE
  value: token
- name: RAY_AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "dljobs.rayAuthSecretName" . }}
      key: auth_token
{{- end -}}

{{/* Everything a Ray container needs besides its group's specifics. */}}
{{- define "dljobs.rayEnv" -}}
{{- include "dljobs.rayAuthEnv" . }}
{{- include "dljobs.rayS3Env" . }}
- name: HOME
  value: /tmp
- name: RAY_USAGE_STATS_ENABLED
  value: "0"
{{- with .Values.ray.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Checks the schema cannot express; a failure names the value to fix. */}}
{{- define "dljobs.validate" -}}
{{- $names := dict -}}
{{- range $i, $group := .Values.ray.gpuWorkerGroups -}}
{{- if gt (int $group.minReplicas) (int $group.maxReplicas) -}}
{{- fail (printf "ray.gpuWorkerGroups[%d] (%s): minReplicas %d is above maxReplicas %d" $i $group.name (int $group.minReplicas) (int $group.maxReplicas)) -}}
{{- end -}}
{{- if hasKey $names $group.name -}}
{{- fail (printf "ray.gpuWorkerGroups[%d]: the name %q is used twice" $i $group.name) -}}
{{- end -}}
{{- $_ := set $names $group.name true -}}
{{- end -}}
{{- if and .Values.ray.cpuWorkers.enabled (hasKey $names "cpu") -}}
{{- fail "ray.gpuWorkerGroups: the name \"cpu\" is taken by ray.cpuWorkers" -}}
{{- end -}}
{{- if and .Values.serving.enabled (not .Values.ray.cluster.enabled) -}}
{{- fail "serving.enabled: Ray Serve runs on the shared RayCluster, which ray.cluster.enabled false turns off; set serving.enabled to false" -}}
{{- end -}}
{{- if gt (int .Values.ray.cpuWorkers.minReplicas) (int .Values.ray.cpuWorkers.maxReplicas) -}}
{{- fail (printf "ray.cpuWorkers: minReplicas %d is above maxReplicas %d" (int .Values.ray.cpuWorkers.minReplicas) (int .Values.ray.cpuWorkers.maxReplicas)) -}}
{{- end -}}
{{- end -}}
