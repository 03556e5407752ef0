variable "name" {
  description = "Name of the function, its role, log group and rules."
  type        = string
  default     = "prometheus-dns-registration"
}

variable "package_path" {
  description = "Path of the deployment zip holding the `bootstrap` binary (see the README: cargo build --release, then zip)."
  type        = string
}

variable "architecture" {
  description = "Instruction set the binary was built for: x86_64 or arm64."
  type        = string
  default     = "x86_64"
  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "hosted_zone_id" {
  description = "Private hosted zone holding the clusters' Prometheus records (bare id, e.g. Z0123456789ABC)."
  type        = string
  validation {
    condition     = can(regex("^Z[A-Z0-9]+$", var.hosted_zone_id))
    error_message = "hosted_zone_id must be a bare Route53 zone id such as Z0123456789ABC."
  }
}

variable "record_suffix" {
  description = "Only records whose name ends with this suffix become federation targets."
  type        = string
  default     = ".prometheus.internal."
}

variable "target_port" {
  description = "Port appended to every discovered target; null for none (the scheme's default port)."
  type        = number
  default     = null
}

variable "static_targets" {
  description = "Targets always federated, e.g. the command-and-control cluster's own Prometheus."
  type = list(object({
    target     = string
    cluster_id = string
  }))
  default = []
}

variable "federation_job_name" {
  description = "Name of the federation job in prometheus.yml."
  type        = string
  default     = "federate"
}

variable "federation_match" {
  description = "match[] selectors used when the federation job has to be created."
  type        = list(string)
  default     = ["{__name__=~\".+\"}"]
}

variable "federation_scheme" {
  description = "Scheme of a newly created federation job: http or https."
  type        = string
  default     = "http"
}

variable "probes" {
  description = "Optional blackbox uptime probes of the installations zone; null disables them."
  type = object({
    hosted_zone_id   = string
    record_suffix    = string
    exclude          = optional(list(string), [])
    path             = optional(string, "/")
    job_name         = optional(string, "blackbox")
    module           = optional(string, "http_2xx")
    exporter_address = string
    scheme           = optional(string, "https")
  })
  default = null
}

variable "eks_cluster_name" {
  description = "EKS cluster running the central Prometheus."
  type        = string
}

variable "configmap_namespace" {
  description = "Namespace of the ConfigMap holding prometheus.yml."
  type        = string
  default     = "monitoring"
}

variable "configmap_name" {
  description = "ConfigMap holding prometheus.yml."
  type        = string
  default     = "prometheus"
}

variable "configmap_key" {
  description = "Key of prometheus.yml in the ConfigMap."
  type        = string
  default     = "prometheus.yml"
}

variable "reload_url" {
  description = "Optional Prometheus reload URL (POST), e.g. http://prometheus.monitoring:9090/-/reload; needs VPC access to it."
  type        = string
  default     = null
}

variable "kubernetes_group" {
  description = "Kubernetes group the function's role is mapped to by the EKS access entry."
  type        = string
  default     = "prometheus-dns-registration"
}

variable "manage_kubernetes_rbac" {
  description = "Create the Role (get + update on the one ConfigMap) and RoleBinding with the kubernetes provider."
  type        = bool
  default     = true
}

variable "schedule_expression" {
  description = "Periodic resync as a safety net for missed events (EventBridge schedule expression); null disables it."
  type        = string
  default     = "rate(1 hour)"
}

variable "filter_events_by_zone" {
  description = "Trigger only on changes to the configured zone(s); false triggers on every ChangeResourceRecordSets."
  type        = bool
  default     = true
}

variable "vpc_subnet_ids" {
  description = "Subnets for the function (needed when the EKS endpoint is private or reload_url is set); empty: no VPC."
  type        = list(string)
  default     = []
}

variable "vpc_security_group_ids" {
  description = "Security groups for the function when it runs in a VPC."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch logs."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "Optional KMS key for the environment variables and the log group."
  type        = string
  default     = null
}

variable "dead_letter_target_arn" {
  description = "Optional SQS queue or SNS topic for events whose invocations failed after retries."
  type        = string
  default     = null
}

variable "memory_size" {
  description = "Memory of the function in MB."
  type        = number
  default     = 128
}

variable "timeout" {
  description = "Timeout of one run in seconds."
  type        = number
  default     = 60
}

variable "log_level" {
  description = "RUST_LOG filter of the function."
  type        = string
  default     = "info"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
