{{/*
The fixed facts about each service: name (resource suffix and image), values key, ports,
env prefix for its listen addresses, and the services it calls over gRPC (used for the
NetworkPolicies). The gateway's HTTP port is also its API port.
*/}}
{{- define "sankalpa.componentTable" -}}
components:
  - name: gateway
    key: gateway
    grpcPort: 0
    httpPort: 8080
    calls: [auth, agent-runner, chain-orchestrator, memory, marketplace, triggers]
  - name: auth
    key: auth
    envPrefix: AUTH
    grpcPort: 50051
    httpPort: 9101
    calls: []
  - name: agent-runner
    key: agentRunner
    envPrefix: AGENTS
    grpcPort: 50052
    httpPort: 9102
    calls: [auth, memory]
  - name: chain-orchestrator
    key: chainOrchestrator
    envPrefix: CHAINS
    grpcPort: 50053
    httpPort: 9103
    calls: [agent-runner, auth, memory]
  - name: memory
    key: memory
    envPrefix: MEMORY
    grpcPort: 50054
    httpPort: 9104
    calls: [auth]
  - name: marketplace
    key: marketplace
    envPrefix: MARKETPLACE
    grpcPort: 50055
    httpPort: 9105
    calls: [auth, chain-orchestrator, agent-runner]
  - name: triggers
    key: triggers
    envPrefix: TRIGGERS
    grpcPort: 50056
    httpPort: 9106
    calls: [auth, chain-orchestrator]
{{- end -}}

{{/* The enabled components, each merged with its values under `.values`. */}}
{{- define "sankalpa.components" -}}
{{- $out := list -}}
{{- range (include "sankalpa.componentTable" . | fromYaml).components -}}
{{- $v := index $.Values .key -}}
{{- if $v.enabled -}}
{{- $out = append $out (merge (dict "values" $v) .) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "components" $out) -}}
{{- end -}}

{{- define "sankalpa.enabledNames" -}}
{{- $names := list -}}
{{- range (include "sankalpa.components" . | fromYaml).components -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- toYaml (dict "names" $names) -}}
{{- end -}}

{{- define "sankalpa.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sankalpa.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sankalpa.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: sankalpa
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "name" "gateway") */}}
{{- define "sankalpa.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sankalpa.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "sankalpa.componentLabels" -}}
{{ include "sankalpa.labels" .root }}
{{ include "sankalpa.selectorLabels" . }}
{{- end -}}

{{- define "sankalpa.serviceAccountName" -}}
{{- $sa := .c.values.serviceAccount -}}
{{- if $sa.create -}}
{{- default (printf "%s-%s" (include "sankalpa.fullname" .root) .c.name) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{- define "sankalpa.image" -}}
{{- $img := .root.Values.image -}}
{{- $registry := ternary "" (printf "%s/" $img.registry) (empty $img.registry) -}}
{{- printf "%s%s%s:%s" $registry $img.repositoryPrefix .name (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{/*
In-cluster gRPC URL of a component: (dict "root" $ "name" "auth" "port" 50051). The headless
Service when grpc.headless is on and no mesh balances instead: the clients resolve its name to
every ready pod and balance each request over them.
*/}}
{{- define "sankalpa.grpcUrl" -}}
{{- $g := .root.Values.grpc -}}
{{- $host := printf "%s-%s" (include "sankalpa.fullname" .root) .name -}}
{{- if and $g.headless (eq $g.serviceMesh "none") -}}
{{- $host = include "sankalpa.headlessName" . -}}
{{- end -}}
{{- printf "http://%s:%d" $host (int .port) -}}
{{- end -}}

{{/*
The headless Service of a component: (dict "root" $ "name" "auth"). The release part is cut to
35 characters so that `-chain-orchestrator-headless` still fits a DNS label (63).
*/}}
{{- define "sankalpa.headlessName" -}}
{{- printf "%s-%s-headless" (include "sankalpa.fullname" .root | trunc 35 | trimSuffix "-") .name -}}
{{- end -}}

{{/*
A dev profile server's name: (dict "root" $ "name" "postgres"). The release part is cut to 39
characters: a StatefulSet's name must leave room for its revision hash in a label (52).
*/}}
{{- define "sankalpa.devName" -}}
{{- printf "%s-dev-%s" (include "sankalpa.fullname" .root | trunc 39 | trimSuffix "-") .name -}}
{{- end -}}

{{/* The Secret dev.enabled generates (passwords, URLs, S3 keys). */}}
{{- define "sankalpa.devSecret" -}}
{{- printf "%s-dev" (include "sankalpa.fullname" .) -}}
{{- end -}}

{{/*
Where the backing services are, as the services get them: the operator's values, or with
dev.enabled the release's own servers, through the same existing-secret path.
*/}}
{{- define "sankalpa.backing" -}}
{{- $v := .Values -}}
{{- if $v.dev.enabled -}}
{{- $secret := include "sankalpa.devSecret" . -}}
postgres: {existingSecret: {{ $secret }}, existingSecretKey: postgres-url}
redis: {existingSecret: {{ $secret }}, existingSecretKey: redis-url}
nats: {existingSecret: {{ $secret }}, existingSecretKey: nats-url}
objectStore:
  url: {{ printf "s3://%s/objects" $v.dev.minio.bucket | quote }}
  s3:
    region: us-east-1
    endpoint: {{ printf "http://%s:9000" (include "sankalpa.devName" (dict "root" . "name" "minio")) | quote }}
    existingSecret: {{ $secret }}
    accessKeyIdKey: AWS_ACCESS_KEY_ID
    secretAccessKeyKey: AWS_SECRET_ACCESS_KEY
{{- else -}}
{{- toYaml (pick $v "postgres" "redis" "nats" "objectStore") -}}
{{- end -}}
{{- end -}}

{{/* An env var from a URL value or from an existing Secret holding the whole URL. */}}
{{- define "sankalpa.urlEnv" -}}
- name: {{ .env }}
{{- if .cfg.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ .cfg.existingSecret }}
      key: {{ .cfg.existingSecretKey }}
{{- else }}
  value: {{ .cfg.url | quote }}
{{- end }}
{{- end -}}
