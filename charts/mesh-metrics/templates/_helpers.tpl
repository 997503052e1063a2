{{/*
Shared helpers. Everything named here starts with "mesh-metrics.".
*/}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "mesh-metrics.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name used for every namespaced and cluster-scoped object of the release:
fullnameOverride, else "<release>" when it already contains the chart name, else
"<release>-<chart>". Truncated to 52 characters so that derived names
("<fullname>-auth-delegator", "<fullname>-selfsigned") stay within 63.
*/}}
{{- define "mesh-metrics.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "name-version" for the helm.sh/chart label. */}}
{{- define "mesh-metrics.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "mesh-metrics.labels" -}}
helm.sh/chart: {{ include "mesh-metrics.chart" . }}
{{ include "mesh-metrics.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/component: aggregated-apiserver
app.kubernetes.io/part-of: mesh-metrics
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the pods (never change them between releases). */}}
{{- define "mesh-metrics.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mesh-metrics.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* ServiceAccount the pods run as. */}}
{{- define "mesh-metrics.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mesh-metrics.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Container image: repository:tag, pinned with @digest when a digest is given. */}}
{{- define "mesh-metrics.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The APIService's fixed name: <version>.<group>. */}}
{{- define "mesh-metrics.apiServiceName" -}}v1alpha1.metrics.smi-spec.io{{- end -}}

{{/* Name of the Secret holding the serving certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "mesh-metrics.tlsSecretName" -}}
{{- if eq .Values.tls.mode "existingSecret" -}}
{{- required "tls.existingSecret.name is required when tls.mode is existingSecret" .Values.tls.existingSecret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "mesh-metrics.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* DNS names the serving certificate must carry (kube-apiserver verifies <svc>.<ns>.svc), as YAML {names: [...]}. */}}
{{- define "mesh-metrics.dnsNames" -}}
{{- $svc := include "mesh-metrics.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- toYaml (dict "names" (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain))) -}}
{{- end -}}

{{/*
Checks tls.mode and the APIService TLS options once; called from the APIService and
Deployment templates so a wrong combination fails the render.
*/}}
{{- define "mesh-metrics.validateTLS" -}}
{{- $modes := list "generate" "certManager" "existingSecret" -}}
{{- if not (has .Values.tls.mode $modes) -}}
{{- fail (printf "tls.mode %q is not one of %s" (toString .Values.tls.mode) (join ", " $modes)) -}}
{{- end -}}
{{- if and .Values.apiService.insecureSkipTLSVerify (eq .Values.tls.mode "existingSecret") .Values.tls.existingSecret.caBundle -}}
{{- fail "apiService.insecureSkipTLSVerify cannot be combined with tls.existingSecret.caBundle (the APIService may not carry both); drop one of them" -}}
{{- end -}}
{{- end -}}

{{/*
The generated serving certificate (tls.mode=generate), as YAML {ca, crt, key, reused}.

It is computed once per render and memoised in .Values so that the Secret, the
APIService caBundle and the Deployment checksum all see the same certificate.
On upgrade the existing Secret is looked up and reused (the certificate stays
stable for its whole validity); `helm template` and client-side dry runs cannot look
it up and therefore show a freshly generated one. tls.generate.rotate=true forces a
new CA and certificate.
*/}}
{{- define "mesh-metrics.generatedTLS" -}}
{{- if not (hasKey .Values "__meshMetricsGeneratedTLS") -}}
{{- $data := dict -}}
{{- if not .Values.tls.generate.rotate -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "mesh-metrics.tlsSecretName" .) -}}
{{- $d := dict -}}
{{- if $existing -}}{{- $d = $existing.data | default dict -}}{{- end -}}
{{- if and (index $d "tls.crt") (index $d "tls.key") (index $d "ca.crt") -}}
{{- $data = dict "ca" (index $d "ca.crt" | b64dec) "crt" (index $d "tls.crt" | b64dec) "key" (index $d "tls.key" | b64dec) "reused" true -}}
{{- end -}}
{{- end -}}
{{- if not $data -}}
{{- $svc := include "mesh-metrics.fullname" . -}}
{{- $days := int .Values.tls.generate.validityDays -}}
{{- $ca := genCA (printf "%s-ca" $svc) $days -}}
{{- $sans := (include "mesh-metrics.dnsNames" . | fromYaml).names -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc .Release.Namespace) nil $sans $days $ca -}}
{{- $data = dict "ca" $ca.Cert "crt" $cert.Cert "key" $cert.Key "reused" false -}}
{{- end -}}
{{- $_ := set .Values "__meshMetricsGeneratedTLS" $data -}}
{{- end -}}
{{- toYaml (index .Values "__meshMetricsGeneratedTLS") -}}
{{- end -}}

{{/*
PEM CA bundle for the APIService spec.caBundle ("" when cert-manager's cainjector
fills it, or when verification is explicitly skipped).
*/}}
{{- define "mesh-metrics.caBundle" -}}
{{- if not .Values.apiService.insecureSkipTLSVerify -}}
{{- if eq .Values.tls.mode "generate" -}}
{{- (include "mesh-metrics.generatedTLS" . | fromYaml).ca -}}
{{- else if eq .Values.tls.mode "existingSecret" -}}
{{- if .Values.tls.existingSecret.caBundle -}}
{{- .Values.tls.existingSecret.caBundle -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "mesh-metrics.tlsSecretName" .) -}}
{{- $ca := "" -}}
{{- if $existing -}}{{- $ca = index ($existing.data | default dict) "ca.crt" | default "" | b64dec -}}{{- end -}}
{{- if not $ca -}}
{{- fail (printf "tls.mode=existingSecret needs tls.existingSecret.caBundle (the PEM CA that signed Secret %q), unless that Secret has a ca.crt key and the cluster is reachable for lookup; or set apiService.insecureSkipTLSVerify=true if you really want no verification" (include "mesh-metrics.tlsSecretName" .)) -}}
{{- end -}}
{{- $ca -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Checksum of the serving certificate material, for the pod template annotation, so that
a new certificate rolls the pods. cert-manager renewals happen outside Helm and are not
covered (see README).
*/}}
{{- define "mesh-metrics.tlsChecksum" -}}
{{- if eq .Values.tls.mode "generate" -}}
{{- $t := include "mesh-metrics.generatedTLS" . | fromYaml -}}
{{- printf "%s%s" $t.crt $t.key | sha256sum -}}
{{- else if eq .Values.tls.mode "certManager" -}}
{{- include "mesh-metrics.certManagerCertificateSpec" . | sha256sum -}}
{{- else -}}
{{- printf "%s/%s" (include "mesh-metrics.tlsSecretName" .) .Values.tls.existingSecret.caBundle | sha256sum -}}
{{- end -}}
{{- end -}}

{{/* Name of the cert-manager issuer that signs the serving certificate. */}}
{{- define "mesh-metrics.certManagerIssuerRef" -}}
{{- if .Values.tls.certManager.issuerRef.name -}}
name: {{ .Values.tls.certManager.issuerRef.name }}
kind: {{ .Values.tls.certManager.issuerRef.kind | default "Issuer" }}
group: {{ .Values.tls.certManager.issuerRef.group | default "cert-manager.io" }}
{{- else -}}
name: {{ include "mesh-metrics.fullname" . }}-ca
kind: Issuer
group: cert-manager.io
{{- end -}}
{{- end -}}

{{/* spec of the serving Certificate (also hashed into the pod checksum). */}}
{{- define "mesh-metrics.certManagerCertificateSpec" -}}
secretName: {{ include "mesh-metrics.tlsSecretName" . }}
commonName: {{ printf "%s.%s.svc" (include "mesh-metrics.fullname" .) .Release.Namespace }}
dnsNames:
{{ (include "mesh-metrics.dnsNames" . | fromYaml).names | toYaml }}
duration: {{ .Values.tls.certManager.duration }}
renewBefore: {{ .Values.tls.certManager.renewBefore }}
usages:
  - server auth
  - digital signature
  - key encipherment
privateKey:
  algorithm: {{ .Values.tls.certManager.privateKey.algorithm }}
  size: {{ .Values.tls.certManager.privateKey.size }}
  rotationPolicy: Always
issuerRef:
{{ include "mesh-metrics.certManagerIssuerRef" . | indent 2 }}
{{- end -}}

{{/*
Usual in-cluster Prometheus address of each mesh; the keys are also the list of meshes
the chart accepts.
*/}}
{{- define "mesh-metrics.meshDefaultURLs" -}}
linkerd: http://prometheus.linkerd-viz.svc.cluster.local:9090
istio: http://prometheus.istio-system.svc.cluster.local:9090
consul: http://prometheus-server.consul.svc.cluster.local
osm: http://osm-prometheus.osm-system.svc.cluster.local:7070
kuma: http://prometheus-server.mesh-observability.svc.cluster.local
cilium: http://prometheus.kube-system.svc.cluster.local:9090
{{- end -}}

{{/*
The backends of the config file, normalised and checked, as YAML {backends: [...]}.

Input: .Values.backends when non-empty, else one backend from the simple form
(mesh + prometheus + scrapeLabels, serving every namespace). Empty optional fields
are left out, because the server rejects unknown keys and treats "" as a path.
Fails the render on: unknown mesh, duplicate names, more than one catch-all backend
(empty namespaces), a namespace listed twice, certFile without keyFile, basic auth
without passwordFile.
*/}}
{{- define "mesh-metrics.backends" -}}
{{- $urls := include "mesh-metrics.meshDefaultURLs" . | fromYaml -}}
{{- $meshes := keys $urls | sortAlpha -}}
{{- $full := not (empty .Values.backends) -}}
{{- $in := .Values.backends -}}
{{- if not $full -}}
{{- $in = list (merge (dict "name" .Values.mesh "mesh" .Values.mesh "prometheus" .Values.prometheus "scrapeLabels" .Values.scrapeLabels) (deepCopy .Values.meshOptions)) -}}
{{- end -}}
{{- $out := list -}}
{{- $names := dict -}}
{{- $claimed := dict -}}
{{- $catchAll := list -}}
{{- range $i, $b := $in -}}
{{- $where := ternary (printf "backends[%d]" $i) "mesh" $full -}}
{{- if not (kindIs "map" $b) -}}
{{- fail (printf "%s: each backend must be a map with at least `mesh`" $where) -}}
{{- end -}}
{{- $mesh := toString ($b.mesh | default "") -}}
{{- if not (hasKey $urls $mesh) -}}
{{- fail (printf "%s: unknown mesh %q; expected one of %s" $where $mesh (join ", " $meshes)) -}}
{{- end -}}
{{- $name := toString ($b.name | default $mesh) -}}
{{- if hasKey $names $name -}}
{{- fail (printf "%s: backend name %q is used twice; give each backend a distinct `name`" $where $name) -}}
{{- end -}}
{{- $_ := set $names $name true -}}
{{- $namespaces := $b.namespaces | default list -}}
{{- if empty $namespaces -}}
{{- $catchAll = append $catchAll $name -}}
{{- end -}}
{{- range $namespaces -}}
{{- $ns := toString . -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $ns) -}}
{{- fail (printf "%s: namespace %q is not a valid namespace name" $where $ns) -}}
{{- end -}}
{{- if hasKey $claimed $ns -}}
{{- fail (printf "%s: namespace %q is already served by backend %q" $where $ns (get $claimed $ns)) -}}
{{- end -}}
{{- $_ := set $claimed $ns $name -}}
{{- end -}}
{{- $p := $b.prometheus | default dict -}}
{{- $prom := dict "url" (toString ($p.url | default (get $urls $mesh))) "timeout" (toString ($p.timeout | default "10s")) -}}
{{- range $key := list "bearerTokenFile" "caFile" "certFile" "keyFile" -}}
{{- if get $p $key -}}{{- $_ := set $prom $key (toString (get $p $key)) -}}{{- end -}}
{{- end -}}
{{- if ne (hasKey $prom "certFile") (hasKey $prom "keyFile") -}}
{{- fail (printf "%s: prometheus.certFile and prometheus.keyFile must be given together" $where) -}}
{{- end -}}
{{- $ba := $p.basicAuth | default dict -}}
{{- if $ba.username -}}
{{- if not $ba.passwordFile -}}
{{- fail (printf "%s: prometheus.basicAuth.username needs basicAuth.passwordFile" $where) -}}
{{- end -}}
{{- $_ := set $prom "basicAuth" (dict "username" (toString $ba.username) "passwordFile" (toString $ba.passwordFile)) -}}
{{- end -}}
{{- if $p.headers -}}{{- $_ := set $prom "headers" $p.headers -}}{{- end -}}
{{- $entry := dict "name" $name "mesh" $mesh "namespaces" $namespaces "prometheus" $prom -}}
{{- with $b.scrapeLabels -}}{{- $_ := set $entry "scrapeLabels" . -}}{{- end -}}
{{- range $key := list "workloadKinds" "consulDatacenter" "kumaMesh" "osmStats" -}}
{{- with get $b $key -}}{{- $_ := set $entry $key . -}}{{- end -}}
{{- end -}}
{{- $out = append $out $entry -}}
{{- end -}}
{{- if empty $out -}}
{{- fail "no backend: set `mesh` (and prometheus.url) or list `backends`" -}}
{{- end -}}
{{- if gt (len $catchAll) 1 -}}
{{- fail (printf "backends %s all have empty `namespaces` (each would serve every other namespace); at most one backend may be the catch-all, list namespaces for the others" (join ", " $catchAll)) -}}
{{- end -}}
{{- toYaml (dict "backends" $out) -}}
{{- end -}}

{{/* The server's YAML config file (keys as in `mesh-metrics --help`, camelCase). */}}
{{- define "mesh-metrics.config" -}}
{{- $s := .Values.server -}}
{{- $modes := list "Delegated" "AlwaysAllow" -}}
{{- if not (has $s.authorizationMode $modes) -}}
{{- fail (printf "server.authorizationMode %q is not one of %s" (toString $s.authorizationMode) (join ", " $modes)) -}}
{{- end -}}
{{- $cfg := dict
    "securePort" (int $s.securePort)
    "authorizationMode" $s.authorizationMode
    "defaultWindow" (toString $s.defaultWindow)
    "maxWindow" (toString $s.maxWindow)
    "evaluationInterval" (toString $s.evaluationInterval)
    "cacheMaxBytes" (int64 $s.cacheMaxBytes)
    "logLevel" (toString $s.logLevel) -}}
{{- if $s.bindAddress -}}{{- $_ := set $cfg "bindAddress" (toString $s.bindAddress) -}}{{- end -}}
{{- $_ := set $cfg "backends" (include "mesh-metrics.backends" . | fromYaml).backends -}}
{{- with .Values.customMetrics.versions -}}{{- $_ := set $cfg "customMetricsVersions" . -}}{{- end -}}
{{- $cfg = mergeOverwrite $cfg (deepCopy .Values.extraConfig) -}}
{{- toYaml $cfg -}}
{{- end -}}
