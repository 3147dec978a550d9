{{/* The controller's settings (dljobs/controller/settings.py): plain values for configuration, secretKeyRef for
     every secret. Shared by the Deployment and the migrations Job. */}}
{{- define "dljobs.controllerEnv" -}}
- name: DLJOBS_MODE
  value: cluster
- name: DLJOBS_HOME
  value: /var/lib/dljobs
- name: DLJOBS_SERVER__HOST
  value: 0.0.0.0
- name: DLJOBS_SERVER__PORT
  value: "8765"
- name: DLJOBS_SERVER__PUBLIC_URL
  value: {{ include "dljobs.controllerUrl" . | quote }}
- name: DLJOBS_DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ include "dljobs.databaseSecretName" . }}
      key: {{ include "dljobs.databaseUrlKey" . }}
- name: DLJOBS_DATABASE__POOL_SIZE
  value: {{ .Values.controller.databasePoolSize | quote }}
{{- if .Values.ray.cluster.enabled }}
- name: DLJOBS_RAY__ADDRESS
  value: {{ include "dljobs.rayAddress" . | quote }}
{{- end }}
- name: DLJOBS_RAY__TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "dljobs.rayAuthSecretName" . }}
      key: auth_token
- name: DLJOBS_STORAGE__URL
  value: {{ include "dljobs.storageUrl" . | quote }}
{{- with .Values.storage.s3.endpointUrl }}
- name: DLJOBS_STORAGE__S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.storage.s3.region }}
- name: DLJOBS_STORAGE__S3_REGION
  value: {{ . | quote }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- include "dljobs.awsCredentialsEnv" . }}
- name: DLJOBS_AUTH__BOOTSTRAP_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "dljobs.adminSecretName" . }}
      key: {{ include "dljobs.adminSecretKey" . }}
- name: DLJOBS_LAUNCHER__KIND
  value: {{ .Values.launcher.kind }}
- name: DLJOBS_LAUNCHER__NAMESPACE
  value: {{ .Release.Namespace | quote }}
- name: DLJOBS_LAUNCHER__RAY_IMAGE
  value: {{ include "dljobs.rayImage" . | quote }}
- name: DLJOBS_LAUNCHER__RAYJOB_TTL_SECONDS
  value: {{ .Values.launcher.rayJob.ttlSecondsAfterFinished | quote }}
{{- if eq .Values.launcher.kind "kuberay_rayjob" }}
- name: DLJOBS_LAUNCHER__RAYJOB_TEMPLATE_FILE
  value: /etc/dljobs/rayjob/template.json
{{- end }}
- name: DLJOBS_SERVING__ENABLED
  value: {{ .Values.serving.enabled | quote }}
{{- if .Values.serving.enabled }}
{{- /* Serve's proxy listens on every interface of the Ray pods (the head Service routes to it). */}}
- name: DLJOBS_SERVING__HTTP_HOST
  value: 0.0.0.0
- name: DLJOBS_SERVING__HTTP_PORT
  value: {{ .Values.serving.port | quote }}
- name: DLJOBS_SERVING__HTTP_URL
  value: {{ include "dljobs.serveUrl" . | quote }}
- name: DLJOBS_SERVING__DRAIN_SECONDS
  value: {{ .Values.serving.drainSeconds | quote }}
- name: DLJOBS_SERVING__ROUTE_TTL
  value: {{ .Values.serving.routeTtlSeconds | quote }}
- name: DLJOBS_SERVING__STATS_WINDOW
  value: {{ .Values.serving.statsWindowSeconds | quote }}
{{- end }}
{{- with .Values.controller.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
