{{/* metadata.name of the WasmPlugin: .Values.name, else the release name. */}}
{{- define "wasm-plugin.name" -}}
{{- default .Release.Name .Values.name -}}
{{- end -}}

{{- define "wasm-plugin.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
{{- end -}}

{{/* Name of the pull Secret the chart creates (only meaningful with pullSecret.create). */}}
{{- define "wasm-plugin.pullSecretName" -}}
{{- .Values.pullSecret.name | default .Values.imagePullSecret | default (printf "%s-pull" (include "wasm-plugin.name" .)) -}}
{{- end -}}

{{/* The imagePullSecret the WasmPlugin references, or "". */}}
{{- define "wasm-plugin.imagePullSecret" -}}
{{- if .Values.imagePullSecret -}}
{{- .Values.imagePullSecret -}}
{{- else if .Values.pullSecret.create -}}
{{- include "wasm-plugin.pullSecretName" . -}}
{{- end -}}
{{- end -}}
