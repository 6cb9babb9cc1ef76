{{/*
Names, labels and the per-component environment. Components: the three gRPC servers
(ingest, social, rank) and the three workers (consumer, precompute, archive); "migration"
is the schema hook Job, which reads the social settings.
*/}}

{{- define "stepboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stepboard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>"; the fullname is cut to 50 so this stays within 63. */}}
{{- define "stepboard.componentName" -}}
{{- printf "%s-%s" (include "stepboard.fullname" .root) .component -}}
{{- end -}}

{{/* A server's headless Service, "<componentName>-headless" (cut to 63): its DNS name
resolves to every ready pod, for clients that balance calls themselves. */}}
{{- define "stepboard.headlessName" -}}
{{- printf "%s-headless" (include "stepboard.componentName" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stepboard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stepboard.servers" -}}ingest social rank{{- end -}}
{{- define "stepboard.components" -}}ingest social rank consumer precompute archive{{- end -}}

{{/* The python module each component runs. */}}
{{- define "stepboard.module" -}}
{{- $modules := dict "ingest" "ingest_svc" "social" "social_svc" "rank" "rank_svc" "consumer" "rank_svc.consumer" "precompute" "rank_svc.precompute" "archive" "rank_svc.archive" "migration" "social_svc" -}}
{{- index $modules . -}}
{{- end -}}

{{- define "stepboard.labels" -}}
helm.sh/chart: {{ include "stepboard.chart" .root }}
{{ include "stepboard.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: stepboard
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "stepboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stepboard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "stepboard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stepboard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image: repository@digest when image.digest is set (it wins over the tag). */}}
{{- define "stepboard.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Pod extras of one component (ctx: root, component): its labels (the chart's labels, the
component's podLabels, podLabels: the first to set a label wins, so the selector labels
stay), its priorityClassName (empty: none), and the env
entries every container adds (extraEnv, then the component's). The migration Job and the
test Pod have no section of their own: they get the global ones.
*/}}
{{- define "stepboard.podLabels" -}}
{{- $own := (index .root.Values .component | default dict).podLabels | default dict -}}
{{- $labels := merge (dict) (include "stepboard.labels" . | fromYaml) $own .root.Values.podLabels -}}
{{- toYaml $labels -}}
{{- end -}}
{{- define "stepboard.priorityClassName" -}}
{{- (index .root.Values .component | default dict).priorityClassName | default .root.Values.priorityClassName -}}
{{- end -}}
{{- define "stepboard.extraEnv" -}}
{{- $own := (index .root.Values .component | default dict).extraEnv | default list -}}
{{- with concat .root.Values.extraEnv $own }}
{{- toYaml . }}
{{- end -}}
{{- end -}}

{{/* Whether TLS / bearer auth is on for one server: "true" or "". */}}
{{- define "stepboard.tlsOn" -}}
{{- if and .root.Values.tls.enabled (has .component .root.Values.tls.servers) -}}true{{- end -}}
{{- end -}}
{{- define "stepboard.authOn" -}}
{{- if and .root.Values.auth.enabled (has .component .root.Values.auth.servers) -}}true{{- end -}}
{{- end -}}

{{/* Whether one component dials social over TLS / with a token, as its client: "true" or "". */}}
{{- define "stepboard.clientTlsOn" -}}
{{- $v := .root.Values -}}
{{- if and (has .component (list "ingest" "rank" "precompute")) $v.tls.enabled (has "social" $v.tls.servers) -}}true{{- end -}}
{{- end -}}
{{- define "stepboard.clientAuthOn" -}}
{{- $v := .root.Values -}}
{{- if and (has .component (list "ingest" "rank" "precompute")) $v.auth.enabled (has "social" $v.auth.servers) -}}true{{- end -}}
{{- end -}}

{{/* Keys of the TLS and the auth Secret one component mounts (servers and clients alike). */}}
{{- define "stepboard.tlsKeys" -}}
{{- $v := .root.Values -}}
{{- $keys := list -}}
{{- if or (include "stepboard.tlsOn" .) (and (include "stepboard.clientTlsOn" .) $v.tls.clientCaKey) -}}
{{- $keys = concat $keys (list $v.tls.certKey $v.tls.keyKey) -}}
{{- end -}}
{{- if and (include "stepboard.tlsOn" .) $v.tls.clientCaKey -}}
{{- $keys = append $keys $v.tls.clientCaKey -}}
{{- end -}}
{{- if or (include "stepboard.clientTlsOn" .) (include "stepboard.tlsOn" .) -}}
{{- /* A TLS server's probes check its certificate against the CA. */ -}}
{{- $keys = append $keys $v.tls.caKey -}}
{{- end -}}
{{- join " " (uniq $keys) -}}
{{- end -}}
{{- define "stepboard.authKeys" -}}
{{- $v := .root.Values -}}
{{- $keys := list -}}
{{- if include "stepboard.authOn" . -}}{{- $keys = append $keys $v.auth.key -}}{{- end -}}
{{- if include "stepboard.clientAuthOn" . -}}{{- $keys = append $keys (index $v.auth.clientTokenKeys .component) -}}{{- end -}}
{{- join " " (uniq $keys) -}}
{{- end -}}

{{/* The authorization policy of the servers (STEPBOARD_AUTH_POLICY): the components' grants
and the app callers', as one JSON object. */}}
{{- define "stepboard.authPolicy" -}}
{{- toJson (merge (dict) .Values.auth.policy .Values.auth.appCallers) -}}
{{- end -}}

{{/* Whether an app caller is granted FriendGraph methods (so app namespaces reach social): "true" or "". */}}
{{- define "stepboard.appsCallSocial" -}}
{{- range $methods := .Values.auth.appCallers -}}
{{- range $method := $methods -}}
{{- if hasPrefix "stepboard.v1.FriendGraph/" $method -}}true{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Whether a component talks to Redis: "true" or "". social does for its friend cache. */}}
{{- define "stepboard.usesRedis" -}}
{{- if or (has .component (list "rank" "consumer" "precompute" "archive")) (and (eq .component "social") .root.Values.social.cache.enabled) -}}true{{- end -}}
{{- end -}}

{{/* Whether a component talks to MySQL (the graph's shards or the archive's): "true" or "". */}}
{{- define "stepboard.usesMysql" -}}
{{- if has .component (list "social" "migration" "rank" "consumer" "archive") -}}true{{- end -}}
{{- end -}}

{{/* Keys of the Secret with a store's CA and client certificate one component mounts
(.store: "redis" or "mysql"). */}}
{{- define "stepboard.storeTlsKeys" -}}
{{- $t := (index .root.Values .store).tls -}}
{{- $uses := ternary (include "stepboard.usesRedis" .) (include "stepboard.usesMysql" .) (eq .store "redis") -}}
{{- if and $uses $t.enabled $t.existingSecret -}}
{{- join " " (compact (list $t.caKey $t.certKey $t.keyKey)) -}}
{{- end -}}
{{- end -}}

{{/* A store's TLS settings for one component, set into .env (.store: "redis" or "mysql"). */}}
{{- define "stepboard.storeTlsEnv" -}}
{{- $t := (index .root.Values .store).tls -}}
{{- $prefix := printf "STEPBOARD_%s_TLS" (upper .store) -}}
{{- $dir := printf "/etc/stepboard/%s-tls" .store -}}
{{- $_ := set .env $prefix (toString $t.enabled) -}}
{{- if $t.enabled -}}
{{- $_ := set .env (printf "%s_VERIFY_HOSTNAME" $prefix) (toString (ternary $t.verifyHostname $t.verifyIdentity (eq .store "redis"))) -}}
{{- if $t.existingSecret -}}
{{- range $key, $name := dict "caKey" "CA_FILE" "certKey" "CERT_FILE" "keyKey" "KEY_FILE" -}}
{{- if index $t $key -}}
{{- $_ := set $.env (printf "%s_%s" $prefix $name) (printf "%s/%s" $dir (index $t $key)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Where mounted secrets appear inside the containers. */}}
{{- define "stepboard.tlsDir" -}}/etc/stepboard/tls{{- end -}}
{{- define "stepboard.authDir" -}}/etc/stepboard/auth{{- end -}}
{{- define "stepboard.kafkaCaDir" -}}/etc/stepboard/kafka{{- end -}}

{{/*
The non-secret STEPBOARD_* variables one component reads, as a YAML map (the data of its
ConfigMap). Each component gets exactly the settings its config dataclass reads.
*/}}
{{- define "stepboard.configEnv" -}}
{{- $v := .root.Values -}}
{{- $c := .component -}}
{{- $env := dict "STEPBOARD_LOG_LEVEL" (toString $v.logLevel) -}}
{{- if ne $c "migration" -}}
{{- $_ := set $env "STEPBOARD_METRICS_PORT" (ternary (toString (int64 $v.metrics.port)) "0" $v.metrics.enabled) -}}
{{- end -}}
{{- if has $c (list "ingest" "social" "rank") -}}
{{- $cv := index $v $c -}}
{{- $_ := set $env "STEPBOARD_GRPC_PORT" (toString (int64 $cv.grpcPort)) -}}
{{- $_ := set $env "STEPBOARD_MAX_WORKERS" (toString (int64 $v.server.maxWorkers)) -}}
{{- $_ := set $env "STEPBOARD_GRACE_SECONDS" (toString $v.server.graceSeconds) -}}
{{- $_ := set $env "STEPBOARD_MAX_MESSAGE_BYTES" (toString (int64 $v.server.maxMessageBytes)) -}}
{{- $_ := set $env "STEPBOARD_ACCESS_LOG" (toString $v.server.accessLog) -}}
{{- $_ := set $env "STEPBOARD_MAX_CONNECTION_AGE_S" (toString $v.server.maxConnectionAgeSeconds) -}}
{{- $_ := set $env "STEPBOARD_MAX_CONNECTION_AGE_GRACE_S" (toString $v.server.maxConnectionAgeGraceSeconds) -}}
{{- if include "stepboard.authOn" . -}}
{{- $_ := set $env "STEPBOARD_AUTH_TOKENS_FILE" (printf "%s/%s" (include "stepboard.authDir" .) $v.auth.key) -}}
{{- $_ := set $env "STEPBOARD_AUTH_POLICY" (include "stepboard.authPolicy" .root) -}}
{{- end -}}
{{- if include "stepboard.tlsOn" . -}}
{{- $_ := set $env "STEPBOARD_TLS_CERT_FILE" (printf "%s/%s" (include "stepboard.tlsDir" .) $v.tls.certKey) -}}
{{- $_ := set $env "STEPBOARD_TLS_KEY_FILE" (printf "%s/%s" (include "stepboard.tlsDir" .) $v.tls.keyKey) -}}
{{- if $v.tls.clientCaKey -}}
{{- $_ := set $env "STEPBOARD_TLS_CLIENT_CA_FILE" (printf "%s/%s" (include "stepboard.tlsDir" .) $v.tls.clientCaKey) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $v.tracing.otlpEndpoint (has $c (list "ingest" "social" "rank" "consumer")) -}}
{{- $_ := set $env "STEPBOARD_OTLP_ENDPOINT" (toString $v.tracing.otlpEndpoint) -}}
{{- $_ := set $env "STEPBOARD_TRACE_SAMPLE_RATIO" (toString $v.tracing.sampleRatio) -}}
{{- $_ := set $env "STEPBOARD_TRACE_SERVICE_NAME" (printf "%s-%s" $v.tracing.serviceNamePrefix $c) -}}
{{- end -}}
{{- if has $c (list "ingest" "consumer") -}}
{{- $_ := set $env "STEPBOARD_KAFKA_BOOTSTRAP" (toString $v.kafka.bootstrap) -}}
{{- $_ := set $env "STEPBOARD_KAFKA_TOPIC" (toString $v.kafka.topic) -}}
{{- $_ := set $env "STEPBOARD_KAFKA_DLQ_TOPIC" (toString $v.kafka.dlqTopic) -}}
{{- $_ := set $env "STEPBOARD_KAFKA_SECURITY_PROTOCOL" (toString $v.kafka.securityProtocol) -}}
{{- $_ := set $env "STEPBOARD_KAFKA_DELIVERY_TIMEOUT_S" (toString $v.kafka.deliveryTimeoutSeconds) -}}
{{- if $v.kafka.sasl.mechanism -}}
{{- $_ := set $env "STEPBOARD_KAFKA_SASL_MECHANISM" (toString $v.kafka.sasl.mechanism) -}}
{{- end -}}
{{- if $v.kafka.ssl.caSecret -}}
{{- $_ := set $env "STEPBOARD_KAFKA_SSL_CA_FILE" (printf "%s/%s" (include "stepboard.kafkaCaDir" .) $v.kafka.ssl.caKey) -}}
{{- end -}}
{{- end -}}
{{- if eq $c "ingest" -}}
{{- $_ := set $env "STEPBOARD_MAX_STEPS_PER_DAY" (toString (int64 $v.validation.maxStepsPerDay)) -}}
{{- $_ := set $env "STEPBOARD_LATE_DAYS" (toString (int64 $v.validation.lateDays)) -}}
{{- $_ := set $env "STEPBOARD_CLOCK_SKEW_S" (toString (int64 $v.validation.clockSkewSeconds)) -}}
{{- $_ := set $env "STEPBOARD_MAX_BATCH" (toString (int64 $v.validation.maxBatch)) -}}
{{- end -}}
{{- if include "stepboard.usesRedis" . -}}
{{- $_ := set $env "STEPBOARD_REDIS_MODE" (toString $v.redis.mode) -}}
{{- if eq $v.redis.mode "standalone" -}}
{{- $_ := set $env "STEPBOARD_REDIS_URL" (toString $v.redis.url) -}}
{{- else if eq $v.redis.mode "sentinel" -}}
{{- $_ := set $env "STEPBOARD_REDIS_SENTINELS" (join "," $v.redis.sentinels) -}}
{{- $_ := set $env "STEPBOARD_REDIS_SENTINEL_MASTER" (toString $v.redis.sentinelMaster) -}}
{{- else if eq $v.redis.mode "cluster" -}}
{{- $_ := set $env "STEPBOARD_REDIS_CLUSTER_NODES" (join "," $v.redis.clusterNodes) -}}
{{- end -}}
{{- $_ := set $env "STEPBOARD_REDIS_SOCKET_TIMEOUT_S" (toString $v.redis.socketTimeoutSeconds) -}}
{{- $_ := set $env "STEPBOARD_REDIS_ALLOW_EVICTION" (toString $v.redis.allowEviction) -}}
{{- if $v.redis.auth.username -}}
{{- $_ := set $env "STEPBOARD_REDIS_USERNAME" (toString $v.redis.auth.username) -}}
{{- end -}}
{{- include "stepboard.storeTlsEnv" (dict "root" .root "store" "redis" "env" $env) -}}
{{- end -}}
{{- if include "stepboard.usesMysql" . -}}
{{- include "stepboard.storeTlsEnv" (dict "root" .root "store" "mysql" "env" $env) -}}
{{- end -}}
{{- if has $c (list "rank" "consumer" "precompute" "archive") -}}
{{- $_ := set $env "STEPBOARD_BOARD_SHARDS" (toString (int64 $v.board.shards)) -}}
{{- $_ := set $env "STEPBOARD_BOARD_RETENTION_DAYS" (toString (int64 $v.board.retentionDays)) -}}
{{- $_ := set $env "STEPBOARD_BOARD_NAMESPACE" (toString $v.board.namespace) -}}
{{- end -}}
{{- if include "stepboard.clientTlsOn" . -}}
{{- $_ := set $env "STEPBOARD_CLIENT_TLS_CA_FILE" (printf "%s/%s" (include "stepboard.tlsDir" .) $v.tls.caKey) -}}
{{- if $v.tls.clientCaKey -}}
{{- $_ := set $env "STEPBOARD_CLIENT_TLS_CERT_FILE" (printf "%s/%s" (include "stepboard.tlsDir" .) $v.tls.certKey) -}}
{{- $_ := set $env "STEPBOARD_CLIENT_TLS_KEY_FILE" (printf "%s/%s" (include "stepboard.tlsDir" .) $v.tls.keyKey) -}}
{{- end -}}
{{- if $v.tls.socialServerName -}}
{{- $_ := set $env "STEPBOARD_CLIENT_TLS_SERVER_NAME" (toString $v.tls.socialServerName) -}}
{{- end -}}
{{- end -}}
{{- if include "stepboard.clientAuthOn" . -}}
{{- $_ := set $env "STEPBOARD_CLIENT_TOKEN_FILE" (printf "%s/%s" (include "stepboard.authDir" .) (index $v.auth.clientTokenKeys $c)) -}}
{{- end -}}
{{- if has $c (list "ingest" "rank" "precompute") -}}
{{- /* Through the headless Service: every social pod's address, calls spread round_robin. */}}
{{- $_ := set $env "STEPBOARD_SOCIAL_ADDR" (printf "dns:///%s:%d" (include "stepboard.headlessName" (dict "root" .root "component" "social")) (int64 $v.social.service.port)) -}}
{{- end -}}
{{- if has $c (list "rank" "precompute") -}}
{{- $_ := set $env "STEPBOARD_HOT_FRIENDS_THRESHOLD" (toString (int64 $v.precompute.hotFriendsThreshold)) -}}
{{- $_ := set $env "STEPBOARD_PRECOMPUTE_INTERVAL_S" (toString $v.precompute.intervalSeconds) -}}
{{- $_ := set $env "STEPBOARD_HOT_MAX_AGE_S" (toString $v.precompute.maxAgeSeconds) -}}
{{- end -}}
{{- if eq $c "rank" -}}
{{- $_ := set $env "STEPBOARD_FRIENDS_FRESH_S" (toString $v.rank.friendsFreshSeconds) -}}
{{- $_ := set $env "STEPBOARD_FRIENDS_STALE_S" (toString $v.rank.friendsStaleSeconds) -}}
{{- $_ := set $env "STEPBOARD_FRIENDS_CACHED_USERS" (toString (int64 $v.rank.friendsCachedUsers)) -}}
{{- $_ := set $env "STEPBOARD_FRIENDS_CACHED_IDS" (toString (int64 $v.rank.friendsCachedIds)) -}}
{{- $_ := set $env "STEPBOARD_LIVE_RANKING_MAX_USERS" (toString (int64 $v.rank.liveRankingMaxUsers)) -}}
{{- end -}}
{{- if eq $c "consumer" -}}
{{- $_ := set $env "STEPBOARD_CONSUMER_GROUP" (toString $v.consumer.group) -}}
{{- $_ := set $env "STEPBOARD_CONSUMER_BATCH" (toString (int64 $v.consumer.batch)) -}}
{{- $_ := set $env "STEPBOARD_CONSUMER_REJOIN_S" (toString $v.consumer.rejoinSeconds) -}}
{{- $_ := set $env "STEPBOARD_CONSUMER_MAX_REPORTS_PER_S" (toString (int64 $v.consumer.maxReportsPerSecond)) -}}
{{- $_ := set $env "STEPBOARD_CONSUMER_NICE" (toString (int64 $v.consumer.nice)) -}}
{{- end -}}
{{- /* rank reads social's cache: the generations of friend lists, and lists and profiles;
precompute records the generation each hot ranking was computed from */ -}}
{{- if has $c (list "social" "rank" "precompute") -}}
{{- $_ := set $env "STEPBOARD_SOCIAL_CACHE" (toString $v.social.cache.enabled) -}}
{{- if $v.social.cache.enabled -}}
{{- $_ := set $env "STEPBOARD_SOCIAL_CACHE_NAMESPACE" (toString $v.social.cache.namespace) -}}
{{- $_ := set $env "STEPBOARD_SOCIAL_CACHE_TTL_S" (toString $v.social.cache.ttlSeconds) -}}
{{- end -}}
{{- end -}}
{{- if eq $c "social" -}}
{{- $_ := set $env "STEPBOARD_SOCIAL_POOL_WAIT_S" (toString $v.social.poolWaitSeconds) -}}
{{- if $v.social.cache.enabled -}}
{{- $_ := set $env "STEPBOARD_SOCIAL_CACHE_MAX_FRIENDS" (toString (int64 $v.social.cache.maxFriends)) -}}
{{- $_ := set $env "STEPBOARD_SOCIAL_CACHE_RETRY_S" (toString $v.social.cache.retrySeconds) -}}
{{- end -}}
{{- end -}}
{{- if has $c (list "social" "migration") -}}
{{- $_ := set $env "STEPBOARD_MYSQL_LOGICAL_SHARDS" (toString (int64 $v.mysql.logicalShards)) -}}
{{- if $v.mysql.shardMap -}}
{{- $_ := set $env "STEPBOARD_MYSQL_SHARD_MAP" (toString $v.mysql.shardMap) -}}
{{- end -}}
{{- end -}}
{{- /* the day archive: written by archive, read by rank's GetHistory and by the consumer,
which restores the week and month boards from it after Redis lost data */ -}}
{{- if has $c (list "rank" "consumer" "archive") -}}
{{- $_ := set $env "STEPBOARD_ARCHIVE_MYSQL_LOGICAL_SHARDS" (toString (int64 $v.archive.mysql.logicalShards)) -}}
{{- if $v.archive.mysql.shardMap -}}
{{- $_ := set $env "STEPBOARD_ARCHIVE_MYSQL_SHARD_MAP" (toString $v.archive.mysql.shardMap) -}}
{{- end -}}
{{- end -}}
{{- if has $c (list "rank" "archive") -}}
{{- $_ := set $env "STEPBOARD_ARCHIVE_RETENTION_MONTHS" (toString (int64 $v.archive.retentionMonths)) -}}
{{- end -}}
{{- if eq $c "archive" -}}
{{- $_ := set $env "STEPBOARD_ARCHIVE_INTERVAL_S" (toString $v.archive.intervalSeconds) -}}
{{- $_ := set $env "STEPBOARD_LATE_DAYS" (toString (int64 $v.validation.lateDays)) -}}
{{- end -}}
{{- if has $c (list "social" "migration" "rank" "consumer" "archive") -}}
{{- $_ := set $env "STEPBOARD_MYSQL_POOL_SIZE" (toString (int64 $v.mysql.poolSize)) -}}
{{- $_ := set $env "STEPBOARD_MYSQL_CONNECT_TIMEOUT_S" (toString $v.mysql.connectTimeoutSeconds) -}}
{{- $_ := set $env "STEPBOARD_MYSQL_READ_TIMEOUT_S" (toString $v.mysql.readTimeoutSeconds) -}}
{{- $_ := set $env "STEPBOARD_MYSQL_WRITE_TIMEOUT_S" (toString $v.mysql.writeTimeoutSeconds) -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}

{{/* The STEPBOARD_* variables one component reads from existing Secrets, as env entries. */}}
{{- define "stepboard.secretEnv" -}}
{{- $v := .root.Values -}}
{{- $c := .component -}}
{{- if and (has $c (list "ingest" "consumer")) $v.kafka.sasl.mechanism }}
- name: STEPBOARD_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $v.kafka.sasl.existingSecret | quote }}
      key: {{ $v.kafka.sasl.usernameKey | quote }}
- name: STEPBOARD_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.kafka.sasl.existingSecret | quote }}
      key: {{ $v.kafka.sasl.passwordKey | quote }}
{{- end }}
{{- if and (include "stepboard.usesRedis" .) $v.redis.auth.existingSecret }}
- name: STEPBOARD_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.redis.auth.existingSecret | quote }}
      key: {{ $v.redis.auth.passwordKey | quote }}
{{- end }}
{{- if has $c (list "social" "migration") }}
{{- if $v.mysql.shards }}
{{- $refs := list }}
{{- range $i, $shard := $v.mysql.shards }}
{{- $refs = append $refs (printf "$(MYSQL_SHARD_DSN_%d)" $i) }}
- name: MYSQL_SHARD_DSN_{{ $i }}
  valueFrom:
    secretKeyRef:
      name: {{ $shard.existingSecret | quote }}
      key: {{ $shard.key | quote }}
{{- end }}
{{- /* Kubernetes expands $(NAME) from the variables defined above. */}}
- name: STEPBOARD_MYSQL_SHARD_DSNS
  value: {{ join "," $refs | quote }}
{{- else }}
- name: STEPBOARD_MYSQL_SHARD_DSNS
  valueFrom:
    secretKeyRef:
      name: {{ $v.mysql.existingSecret | quote }}
      key: {{ $v.mysql.dsnsKey | quote }}
{{- end }}
{{- end }}
{{- if has $c (list "rank" "consumer" "archive") }}
- name: STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS
  valueFrom:
    secretKeyRef:
      name: {{ $v.archive.mysql.existingSecret | quote }}
      key: {{ $v.archive.mysql.dsnsKey | quote }}
{{- end }}
{{- end -}}

{{/* Secret volumes one component mounts (tokens, TLS, Kafka CA), plus a writable /tmp. */}}
{{- define "stepboard.volumes" -}}
{{- $v := .root.Values -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with include "stepboard.authKeys" . }}
- name: auth-tokens
  secret:
    secretName: {{ $v.auth.existingSecret | quote }}
    defaultMode: 0440
    items:
      {{- range splitList " " . }}
      - key: {{ . | quote }}
        path: {{ . | quote }}
      {{- end }}
{{- end }}
{{- with include "stepboard.tlsKeys" . }}
- name: tls
  secret:
    secretName: {{ $v.tls.existingSecret | quote }}
    defaultMode: 0440
    items:
      {{- range splitList " " . }}
      - key: {{ . | quote }}
        path: {{ . | quote }}
      {{- end }}
{{- end }}
{{- range $store := list "redis" "mysql" }}
{{- with include "stepboard.storeTlsKeys" (dict "root" $.root "component" $.component "store" $store) }}
- name: {{ $store }}-tls
  secret:
    secretName: {{ (index $v $store).tls.existingSecret | quote }}
    defaultMode: 0440
    items:
      {{- range splitList " " . }}
      - key: {{ . | quote }}
        path: {{ . | quote }}
      {{- end }}
{{- end }}
{{- end }}
{{- if and (has .component (list "ingest" "consumer")) $v.kafka.ssl.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ $v.kafka.ssl.caSecret | quote }}
    defaultMode: 0440
    items:
      - key: {{ $v.kafka.ssl.caKey | quote }}
        path: {{ $v.kafka.ssl.caKey | quote }}
{{- end }}
{{- with $v.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "stepboard.volumeMounts" -}}
{{- $v := .root.Values -}}
- name: tmp
  mountPath: /tmp
{{- if include "stepboard.authKeys" . }}
- name: auth-tokens
  mountPath: {{ include "stepboard.authDir" . }}
  readOnly: true
{{- end }}
{{- if include "stepboard.tlsKeys" . }}
- name: tls
  mountPath: {{ include "stepboard.tlsDir" . }}
  readOnly: true
{{- end }}
{{- range $store := list "redis" "mysql" }}
{{- if include "stepboard.storeTlsKeys" (dict "root" $.root "component" $.component "store" $store) }}
- name: {{ $store }}-tls
  mountPath: /etc/stepboard/{{ $store }}-tls
  readOnly: true
{{- end }}
{{- end }}
{{- if and (has .component (list "ingest" "consumer")) $v.kafka.ssl.caSecret }}
- name: kafka-ca
  mountPath: {{ include "stepboard.kafkaCaDir" . }}
  readOnly: true
{{- end }}
{{- with $v.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Probes of one server: the kubelet's native gRPC health check, or, when the server speaks
TLS (the kubelet's gRPC probe has none), the image's grpc_health_probe over TLS, checking
the certificate against tls.caKey under probes.tlsServerName and presenting the pod's
certificate when the server requires client certificates. The empty service name is the
server's overall status, which goes NOT_SERVING as soon as it starts draining.
*/}}
{{- define "stepboard.serverProbes" -}}
{{- $p := .root.Values.probes -}}
{{- $port := int64 (index .root.Values .component).grpcPort -}}
{{- $check := dict "grpc" (dict "port" $port "service" "") -}}
{{- if include "stepboard.tlsOn" . -}}
{{- $check = dict "exec" (dict "command" (include "stepboard.tlsProbeCommand" . | fromYamlArray)) -}}
{{- end -}}
startupProbe:
  {{- toYaml $check | nindent 2 }}
  periodSeconds: {{ $p.startup.periodSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
readinessProbe:
  {{- toYaml $check | nindent 2 }}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
livenessProbe:
  {{- toYaml $check | nindent 2 }}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
{{- end -}}

{{/* The TLS health check of one server: grpc_health_probe's arguments, as a YAML list. */}}
{{- define "stepboard.tlsProbeCommand" -}}
{{- $v := .root.Values -}}
{{- $dir := include "stepboard.tlsDir" . -}}
{{- $name := $v.probes.tlsServerName | default $v.tls.socialServerName | default (include "stepboard.headlessName" (dict "root" .root "component" "social")) -}}
- grpc_health_probe
- -addr=localhost:{{ (index $v .component).grpcPort }}
- -tls
- -tls-ca-cert={{ $dir }}/{{ $v.tls.caKey }}
- -tls-server-name={{ $name }}
{{- if $v.tls.clientCaKey }}
- -tls-client-cert={{ $dir }}/{{ $v.tls.certKey }}
- -tls-client-key={{ $dir }}/{{ $v.tls.keyKey }}
{{- end }}
{{- end -}}
