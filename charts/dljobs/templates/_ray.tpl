{{/* Pod-level settings shared by every Ray pod (the Ray image runs as uid 1000). */}}
{{- define "dljobs.rayPodCommon" -}}
securityContext:
  {{- include "dljobs.podSecurityContext" 1000 | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.ray.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* One autoscaling worker group: include "dljobs.rayWorkerGroup" (dict "ctx" . "group" GROUP).
     A GPU group declares its accelerator to Ray twice: as the resource accelerator_type:<TYPE> (what Ray Train's
     accelerator_type and the autoscaler match on, even with no node up) and as the node label
     ray.io/accelerator-type. */}}
{{- define "dljobs.rayWorkerGroup" -}}
{{- $ctx := .ctx -}}
{{- $g := .group -}}
{{- $gpus := int (default 0 $g.gpusPerPod) -}}
groupName: {{ $g.name }}
replicas: {{ $g.minReplicas }}
minReplicas: {{ $g.minReplicas }}
maxReplicas: {{ $g.maxReplicas }}
rayStartParams: {}
{{- if $g.accelerator }}
resources:
  {{ printf "accelerator_type:%s" $g.accelerator | quote }}: "1"
labels:
  ray.io/accelerator-type: {{ $g.accelerator | quote }}
{{- end }}
template:
  metadata:
    labels:
      {{- include "dljobs.labels" $ctx | nindent 6 }}
      app.kubernetes.io/component: ray
  spec:
    serviceAccountName: {{ include "dljobs.rayServiceAccountName" $ctx }}
    automountServiceAccountToken: false
    {{- include "dljobs.rayPodCommon" $ctx | nindent 4 }}
    containers:
      - name: ray-worker
        image: {{ include "dljobs.rayImage" $ctx }}
        imagePullPolicy: {{ $ctx.Values.ray.image.pullPolicy }}
        env:
          {{- include "dljobs.rayEnv" $ctx | nindent 10 }}
        resources:
          requests:
            cpu: {{ $g.cpus | quote }}
            memory: {{ $g.memory }}
            {{- if gt $gpus 0 }}
            nvidia.com/gpu: {{ $gpus | quote }}
            {{- end }}
          limits:
            cpu: {{ $g.cpus | quote }}
            memory: {{ $g.memory }}
            {{- if gt $gpus 0 }}
            nvidia.com/gpu: {{ $gpus | quote }}
            {{- end }}
        securityContext:
          {{- include "dljobs.containerSecurityContext" $ctx | nindent 10 }}
        volumeMounts:
          - {name: tmp, mountPath: /tmp}
          - {name: dshm, mountPath: /dev/shm}
    volumes:
      - name: tmp
        emptyDir: {sizeLimit: {{ default "100Gi" $g.tmpSize }}}
      # Ray's object store and PyTorch's DataLoader workers share memory through /dev/shm.
      - name: dshm
        emptyDir: {medium: Memory, sizeLimit: {{ default "8Gi" $g.sharedMemory }}}
    {{- with $g.nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $g.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end -}}

{{/* Labels the RayJob launcher puts on every pod of a job's Ray cluster and on its submitter (RayJobTemplate.labels
     plus the launcher's dljobs.io/component). */}}
{{- define "dljobs.rayJobPodLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
dljobs.io/component: rayjob
{{- end -}}
