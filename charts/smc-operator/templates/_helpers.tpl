{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "smc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "smc.fullname" -}}
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

{{- define "smc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels shared by every object. */}}
{{- define "smc.labels" -}}
helm.sh/chart: {{ include "smc.chart" . }}
app.kubernetes.io/name: {{ include "smc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: smc-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "smc.operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "smc.nodeAgent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node-agent
{{- end -}}

{{- define "smc.operator.labels" -}}
{{ include "smc.labels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "smc.nodeAgent.labels" -}}
{{ include "smc.labels" . }}
app.kubernetes.io/component: node-agent
{{- end -}}

{{/* Image reference: digest wins over tag; the tag defaults to the appVersion. */}}
{{- define "smc.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "smc.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "smc.fullname" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "smc.nodeAgent.fullname" -}}
{{- printf "%s-node-agent" (include "smc.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "smc.nodeAgent.serviceAccountName" -}}
{{- if .Values.nodeAgent.serviceAccount.create -}}
{{- default (include "smc.nodeAgent.fullname" .) .Values.nodeAgent.serviceAccount.name -}}
{{- else -}}
{{- required "nodeAgent.serviceAccount.name is required when nodeAgent.serviceAccount.create is false" .Values.nodeAgent.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Object names the operator needs to know (passed to it as flags). */}}
{{- define "smc.webhook.configName" -}}
{{- include "smc.fullname" . -}}
{{- end -}}

{{- define "smc.webhook.serviceName" -}}
{{- printf "%s-webhook" (include "smc.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "smc.metrics.serviceName" -}}
{{- printf "%s-metrics" (include "smc.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "smc.webhook.certSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "smc.fullname" .)) .Values.webhook.certSecretName -}}
{{- end -}}

{{/* The Lease name is fixed by convention. */}}
{{- define "smc.leaseName" -}}
smc-operator-leader
{{- end -}}

{{/* Restricted container security context shared by the operator and the node agent. */}}
{{- define "smc.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Seconds in a duration of whole seconds or minutes ("5s", "2m"), as the schema allows. */}}
{{- define "smc.seconds" -}}
{{- if hasSuffix "m" . -}}{{ mul (trimSuffix "m" .) 60 }}{{- else -}}{{ trimSuffix "s" . }}{{- end -}}
{{- end }}

{{/* cert-manager mode (webhook.certManager.enabled): the Certificate of the webhook Service. */}}
{{- define "smc.webhook.certificateName" -}}
{{- printf "%s-webhook" (include "smc.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The chart's own CA (only without webhook.certManager.issuerRef.name). */}}
{{- define "smc.webhook.caName" -}}
{{- printf "%s-webhook-ca" (include "smc.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Where the operator reads the cert-manager-issued tls.crt and tls.key. */}}
{{- define "smc.webhook.certDir" -}}
/var/run/smc-operator/webhook-tls
{{- end -}}

{{/* The Secret holding the operator's directory signing key (Ed25519). */}}
{{- define "smc.directoryKeySecretName" -}}
{{- printf "%s-directory-key" (include "smc.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
