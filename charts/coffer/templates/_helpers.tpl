{{- define "coffer.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "coffer.labels" -}}
app.kubernetes.io/name: coffer-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "coffer.selectorLabels" -}}
app.kubernetes.io/name: coffer-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "coffer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "coffer.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "coffer.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) -}}true{{- end -}}
{{- end -}}

{{/* What the operator does in a namespace it reconciles: least privilege. */}}
{{- define "coffer.rules" -}}
- apiGroups: ["coffer.dev"]
  resources: ["objectstores", "buckets", "accesskeys"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["coffer.dev"]
  resources: ["objectstores/status", "buckets/status", "accesskeys/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["coffer.dev"]
  resources: ["objectstores/finalizers", "buckets/finalizers", "accesskeys/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "create", "patch"]
# configmaps: the topology (cluster id) and the bucket claims (conditional updates); deleted
# only with storageDeletionPolicy Delete.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch", "update", "delete"]
# secrets: read by name only (never listed or watched); patched for AccessKey Secrets,
# deleted only with storageDeletionPolicy Delete.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete"]
# persistentvolumeclaims: deleted by name with storageDeletionPolicy Delete; never read.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
