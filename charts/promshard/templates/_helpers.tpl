{{/* Names, labels and images shared by every template. */}}

{{- define "promshard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "promshard.fullname" -}}
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

{{/* A component's name: <fullname>-<component>, cut so that a StatefulSet pod's name still fits. */}}
{{- define "promshard.component" -}}
{{- printf "%s-%s" (include "promshard.fullname" .root) .component | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "promshard.coordinatorName" -}}
{{- default (include "promshard.fullname" .) .Values.coordinatorName -}}
{{- end -}}

{{- define "promshard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "promshard.selectorLabels" . }}
{{- end -}}

{{- define "promshard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "promshard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "promshard.image" -}}
{{- $img := index .root.Values.image .name -}}
{{- $tag := $img.tag | default (printf "v%s" .root.Chart.AppVersion) -}}
{{- printf "%s:%s" $img.repository $tag -}}
{{- end -}}

{{/* The example shard StatefulSets: name (of replica group 0; group g adds -g<g>) and namespace. */}}
{{- define "promshard.shardsName" -}}
{{- default (include "promshard.component" (dict "root" . "component" "shard")) .Values.shards.name -}}
{{- end -}}

{{- define "promshard.shardsNamespace" -}}
{{- default .Release.Namespace .Values.shards.namespace -}}
{{- end -}}

{{/* coordinator.shards.statefulsets as {namespace, name} objects (NAME alone: the release namespace). */}}
{{- define "promshard.explicitStatefulSets" -}}
{{- $out := list -}}
{{- range .Values.coordinator.shards.statefulsets -}}
{{- if contains "/" . -}}
{{- $out = append $out (dict "namespace" (first (splitList "/" .)) "name" (last (splitList "/" .))) -}}
{{- else -}}
{{- $out = append $out (dict "namespace" $.Release.Namespace "name" .) -}}
{{- end -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}

{{/*
  Namespaces the chart knows hold shards: coordinator.shards.namespace, else the namespaces of
  coordinator.shards.statefulsets, else (found by label anywhere) the release's; the example's;
  and sidecarToken.namespaces. Shards can run only where the sidecar token Secret is, so these
  are also the only namespaces where the coordinator needs to write (scale, Events, its last
  good config).
*/}}
{{- define "promshard.shardNamespaces" -}}
{{- $co := .Values.coordinator.shards -}}
{{- $explicit := fromJsonArray (include "promshard.explicitStatefulSets" .) -}}
{{- $ns := list -}}
{{- if $co.namespace -}}
{{- $ns = append $ns $co.namespace -}}
{{- else if $explicit -}}
{{- range $explicit -}}{{- $ns = append $ns .namespace -}}{{- end -}}
{{- else -}}
{{- $ns = append $ns .Release.Namespace -}}
{{- end -}}
{{- if .Values.shards.enabled -}}{{- $ns = append $ns (include "promshard.shardsNamespace" .) -}}{{- end -}}
{{- $ns = concat $ns .Values.sidecarToken.namespaces -}}
{{- $ns | uniq | toJson -}}
{{- end -}}

{{/*
  The one namespace whose shard pods Thanos Query lists (query-endpoints --namespace):
  coordinator.shards.namespace, else the first of coordinator.shards.statefulsets, else the
  example's, else the release namespace.
*/}}
{{- define "promshard.queryNamespace" -}}
{{- $explicit := fromJsonArray (include "promshard.explicitStatefulSets" .) -}}
{{- if .Values.coordinator.shards.namespace -}}
{{- .Values.coordinator.shards.namespace -}}
{{- else if $explicit -}}
{{- (first $explicit).namespace -}}
{{- else -}}
{{- include "promshard.shardsNamespace" . -}}
{{- end -}}
{{- end -}}

{{/* Every namespace that holds shard pods, and the coordinator's: the sidecar token Secret goes in each. */}}
{{- define "promshard.tokenNamespaces" -}}
{{- prepend (fromJsonArray (include "promshard.shardNamespaces" .)) .Release.Namespace | uniq | toJson -}}
{{- end -}}

{{- define "promshard.podSecurity" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{- define "promshard.containerSecurity" -}}
{{- toYaml .Values.containerSecurityContext -}}
{{- end -}}

{{- define "promshard.webhookTlsSecret" -}}
{{- include "promshard.component" (dict "root" . "component" "webhook-tls") -}}
{{- end -}}

{{- define "promshard.tokenSecret" -}}
{{- include "promshard.component" (dict "root" . "component" "sidecar-token") -}}
{{- end -}}

{{- define "promshard.configMap" -}}
{{- default (include "promshard.component" (dict "root" . "component" "config")) .Values.coordinator.existingConfigMap -}}
{{- end -}}

{{/* Spread over nodes and zones when there are several, never required (a one-node cluster still runs). */}}
{{- define "promshard.spread" -}}
{{- if .values.topologySpreadConstraints -}}
{{- toYaml .values.topologySpreadConstraints -}}
{{- else -}}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "promshard.selectorLabels" . | nindent 6 }}
- maxSkew: 1
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "promshard.selectorLabels" . | nindent 6 }}
{{- end -}}
{{- end -}}

{{- define "promshard.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* What both webhooks share. caBundle is left out: `promshard certs` or cert-manager sets it. */}}
{{- define "promshard.webhookCommon" -}}
{{- $w := .root.Values.webhook -}}
clientConfig:
  service:
    name: {{ .name }}
    namespace: {{ .root.Release.Namespace }}
    path: /mutate
    port: 443
namespaceSelector:
  matchLabels:
    promshard.io/inject: enabled
failurePolicy: {{ .failurePolicy }}
matchPolicy: Equivalent
sideEffects: None
admissionReviewVersions: [v1]
reinvocationPolicy: IfNeeded
timeoutSeconds: {{ $w.timeoutSeconds }}
{{- end -}}

{{/* `promshard certs` keeps its certificates in <secret> and the CA in <secret>-ca. */}}
{{- define "promshard.certsSecretRules" -}}
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [{{ .secret }}, {{ .secret }}-ca]
  verbs: [get, update]
{{- end -}}

{{- define "promshard.certsWebhookRules" -}}
- apiGroups: [admissionregistration.k8s.io]
  resources: [mutatingwebhookconfigurations]
  resourceNames: [{{ .mwc }}]
  verbs: [get, patch]
{{- end -}}

{{/* The pod spec of a `promshard certs` run; .mwc empty: no caBundle to set. */}}
{{- define "promshard.certsPod" -}}
{{- $v := .root.Values -}}
securityContext:
  {{- include "promshard.podSecurity" .root | nindent 2 }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: certs
    image: {{ include "promshard.image" (dict "root" .root "name" "promshard") }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    args:
      - certs
      - --secret={{ .secret }}
      - --namespace={{ .root.Release.Namespace }}
      - --service={{ .service }}
      - --ca.validity={{ $v.certs.caValidity }}
      - --cert.validity={{ $v.certs.certValidity }}
      - --overlap={{ $v.certs.overlap }}
      {{- if .mwc }}
      - --webhook.config={{ .mwc }}
      {{- end }}
    resources:
      {{- toYaml $v.certs.resources | nindent 6 }}
    securityContext:
      {{- include "promshard.containerSecurity" .root | nindent 6 }}
{{- end -}}

{{/* MAJOR.MINOR of the shards' Prometheus, whose semantics the coordinator follows. */}}
{{- define "promshard.prometheusVersion" -}}
{{- $v := splitList "." (trimPrefix "v" .Values.image.prometheus.tag) -}}
{{- printf "%s.%s" (index $v 0) (index $v 1) -}}
{{- end -}}

{{/* The objstore Secret: the user's, or the chart's own for a FILESYSTEM bucket on thanos.objstore.filesystem.volume. */}}
{{- define "promshard.objstoreSecret" -}}
{{- if .Values.thanos.objstore.existingSecret -}}
{{- .Values.thanos.objstore.existingSecret -}}
{{- else if .Values.thanos.objstore.filesystem.volume -}}
{{- include "promshard.component" (dict "root" . "component" "objstore") -}}
{{- end -}}
{{- end -}}

{{/* The volume a FILESYSTEM bucket lives on, named as every pod that mounts it names it. */}}
{{- define "promshard.bucketVolume" -}}
- name: thanos-bucket
  {{- toYaml .Values.thanos.objstore.filesystem.volume | nindent 2 }}
{{- end -}}
