{{/*
Fails rendering when values contradict each other or would only fail later, at pod start
or in production. Every message starts with "stepboard:" and names the values involved.
values.schema.json checks types and ranges; this checks combinations.
*/}}
{{- define "stepboard.validate" -}}
{{- $v := .Values -}}
{{- $errors := list -}}

{{- if not $v.kafka.bootstrap -}}
{{- $errors = append $errors "kafka.bootstrap is required (host:port,... of the brokers)" -}}
{{- end -}}
{{- if gt (int64 $v.consumer.replicas) (int64 $v.kafka.partitions) -}}
{{- $errors = append $errors (printf "consumer.replicas (%d) must not exceed kafka.partitions (%d): a consumer group member beyond the partition count gets no partition and idles; add partitions to the topic first, then raise both" (int64 $v.consumer.replicas) (int64 $v.kafka.partitions)) -}}
{{- end -}}
{{- if and (hasPrefix "sasl_" $v.kafka.securityProtocol) (not $v.kafka.sasl.mechanism) -}}
{{- $errors = append $errors (printf "kafka.securityProtocol is %s but kafka.sasl.mechanism is empty" $v.kafka.securityProtocol) -}}
{{- end -}}
{{- if and $v.kafka.sasl.mechanism (not (hasPrefix "sasl_" $v.kafka.securityProtocol)) -}}
{{- $errors = append $errors (printf "kafka.sasl.mechanism is set but kafka.securityProtocol is %s; use sasl_plaintext or sasl_ssl" $v.kafka.securityProtocol) -}}
{{- end -}}
{{- if and $v.kafka.sasl.mechanism (not $v.kafka.sasl.existingSecret) -}}
{{- $errors = append $errors "kafka.sasl.mechanism is set but kafka.sasl.existingSecret (the Secret with the SASL username and password) is empty" -}}
{{- end -}}
{{- if and $v.kafka.ssl.caSecret (not (has $v.kafka.securityProtocol (list "ssl" "sasl_ssl"))) -}}
{{- $errors = append $errors (printf "kafka.ssl.caSecret is set but kafka.securityProtocol is %s; use ssl or sasl_ssl" $v.kafka.securityProtocol) -}}
{{- end -}}

{{- if and (eq $v.redis.mode "standalone") (not $v.redis.url) -}}
{{- $errors = append $errors "redis.mode is standalone but redis.url is empty" -}}
{{- end -}}
{{- if and (eq $v.redis.mode "sentinel") (not $v.redis.sentinels) -}}
{{- $errors = append $errors "redis.mode is sentinel but redis.sentinels is empty (list the Sentinels as host:port)" -}}
{{- end -}}
{{- if and (eq $v.redis.mode "cluster") (not $v.redis.clusterNodes) -}}
{{- $errors = append $errors "redis.mode is cluster but redis.clusterNodes is empty (list some cluster nodes as host:port)" -}}
{{- end -}}
{{- if and $v.redis.tls.enabled (eq $v.redis.mode "standalone") (not (hasPrefix "rediss://" $v.redis.url)) -}}
{{- $errors = append $errors "redis.tls.enabled is true but redis.url is not a rediss:// URL" -}}
{{- end -}}
{{- range $store := list "redis" "mysql" -}}
{{- $t := (index $v $store).tls -}}
{{- if ne (not $t.certKey) (not $t.keyKey) -}}
{{- $errors = append $errors (printf "%s.tls.certKey and %s.tls.keyKey go together (the client certificate and its key)" $store $store) -}}
{{- end -}}
{{- if and $t.enabled $t.certKey (not $t.existingSecret) -}}
{{- $errors = append $errors (printf "%s.tls.certKey is set but %s.tls.existingSecret (the Secret holding it) is empty" $store $store) -}}
{{- end -}}
{{- end -}}

{{- if and (not $v.mysql.shards) (not $v.mysql.existingSecret) -}}
{{- $errors = append $errors "MySQL DSNs missing: set mysql.existingSecret (one key with every shard's DSN) or mysql.shards" -}}
{{- end -}}
{{- range $i, $shard := $v.mysql.shards -}}
{{- if not (and $shard.existingSecret $shard.key) -}}
{{- $errors = append $errors (printf "mysql.shards[%d] needs both existingSecret and key" $i) -}}
{{- end -}}
{{- end -}}
{{- if $v.mysql.shards -}}
{{- $physical := len $v.mysql.shards -}}
{{- if lt (int64 $v.mysql.logicalShards) (int64 $physical) -}}
{{- $errors = append $errors (printf "mysql.logicalShards (%d) is smaller than the number of mysql.shards (%d)" (int64 $v.mysql.logicalShards) $physical) -}}
{{- end -}}
{{- range $item := splitList "," $v.mysql.shardMap -}}
{{- $target := trim (last (splitList ":" $item)) -}}
{{- if and (trim $item) (regexMatch "^[0-9]+$" $target) (ge (atoi $target) $physical) -}}
{{- $errors = append $errors (printf "mysql.shardMap item %q points at physical shard %s but mysql.shards has only %d entries" (trim $item) $target $physical) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- if $v.tls.enabled -}}
{{- if not $v.tls.existingSecret -}}
{{- $errors = append $errors "tls.enabled is true but tls.existingSecret (the Secret with the certificate and key) is empty" -}}
{{- end -}}
{{- if not $v.tls.servers -}}
{{- $errors = append $errors "tls.enabled is true but tls.servers is empty" -}}
{{- end -}}
{{- end -}}
{{- if and $v.tls.enabled (has "social" $v.tls.servers) (not $v.tls.caKey) -}}
{{- $errors = append $errors "tls.servers contains social but tls.caKey (the CA rank and precompute trust) is empty" -}}
{{- end -}}
{{- if and $v.auth.enabled (not $v.auth.existingSecret) -}}
{{- $errors = append $errors "auth.enabled is true but auth.existingSecret (the Secret with the caller:token file and the components' tokens, docs/deploy.md) is empty; only for development, set auth.enabled=false" -}}
{{- end -}}
{{- range $name, $_ := $v.auth.appCallers -}}
{{- if has $name (list "ingest" "social" "rank" "consumer" "precompute" "archive") -}}
{{- $errors = append $errors (printf "auth.appCallers.%s is a component's name: give app backends names of their own (a component's grants are auth.policy.%s)" $name $name) -}}
{{- end -}}
{{- end -}}

{{- $drain := add (int64 $v.server.preStopSleepSeconds) (ceil $v.server.graceSeconds) -}}
{{- if le (int64 $v.server.terminationGracePeriodSeconds) (int64 $drain) -}}
{{- $errors = append $errors (printf "server.terminationGracePeriodSeconds (%d) must exceed server.preStopSleepSeconds + server.graceSeconds (%d), or the kubelet kills servers mid-drain" (int64 $v.server.terminationGracePeriodSeconds) (int64 $drain)) -}}
{{- end -}}

{{- range $component := splitList " " (include "stepboard.servers" .) -}}
{{- $cv := index $v $component -}}
{{- if and $cv.autoscaling.enabled (gt (int64 $cv.autoscaling.minReplicas) (int64 $cv.autoscaling.maxReplicas)) -}}
{{- $errors = append $errors (printf "%s.autoscaling.minReplicas (%d) exceeds %s.autoscaling.maxReplicas (%d)" $component (int64 $cv.autoscaling.minReplicas) $component (int64 $cv.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- if and $v.metrics.enabled (eq (int64 $cv.grpcPort) (int64 $v.metrics.port)) -}}
{{- $errors = append $errors (printf "%s.grpcPort and metrics.port are both %d" $component (int64 $v.metrics.port)) -}}
{{- end -}}
{{- end -}}

{{- if and $v.networkPolicy.enabled (not $v.networkPolicy.clientNamespaces) (not $v.networkPolicy.clientNamespaceSelector) -}}
{{- $errors = append $errors "networkPolicy.enabled is true but neither networkPolicy.clientNamespaces nor networkPolicy.clientNamespaceSelector names the app namespaces: nothing could call ingest or rank" -}}
{{- end -}}
{{- if and $v.metrics.serviceMonitor.enabled (not $v.metrics.enabled) -}}
{{- $errors = append $errors "metrics.serviceMonitor.enabled needs metrics.enabled" -}}
{{- end -}}
{{- if lt (float64 $v.precompute.maxAgeSeconds) (float64 $v.precompute.intervalSeconds) -}}
{{- $errors = append $errors (printf "precompute.maxAgeSeconds (%v) must be at least precompute.intervalSeconds (%v), or every precomputed ranking goes stale between two rounds" $v.precompute.maxAgeSeconds $v.precompute.intervalSeconds) -}}
{{- end -}}
{{- if ge (int64 $v.validation.lateDays) (int64 $v.board.retentionDays) -}}
{{- $errors = append $errors (printf "validation.lateDays (%d) must be below board.retentionDays (%d): ingest would acknowledge reports for days whose board has expired or is about to, and the consumer would drop them" (int64 $v.validation.lateDays) (int64 $v.board.retentionDays)) -}}
{{- end -}}
{{- if le (int64 $v.rank.liveRankingMaxUsers) (int64 $v.precompute.hotFriendsThreshold) -}}
{{- $errors = append $errors (printf "rank.liveRankingMaxUsers (%d) must exceed precompute.hotFriendsThreshold (%d): a user who is not hot is never precomputed, so their ranking must be computable per call" (int64 $v.rank.liveRankingMaxUsers) (int64 $v.precompute.hotFriendsThreshold)) -}}
{{- end -}}

{{- if $errors -}}
{{- fail (printf "\n\nstepboard: invalid values:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
