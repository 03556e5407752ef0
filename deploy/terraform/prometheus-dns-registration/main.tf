data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

data "aws_eks_cluster" "this" {
  name = var.eks_cluster_name
}

locals {
  region    = data.aws_region.current.name
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition

  zone_ids  = compact([var.hosted_zone_id, try(var.probes.hosted_zone_id, null)])
  zone_arns = [for z in local.zone_ids : "arn:${local.partition}:route53:::hostedzone/${z}"]

  # CloudTrail's requestParameters.hostedZoneId: listed bare and with the /hostedzone/ prefix.
  event_pattern = jsonencode({
    source      = ["aws.route53"]
    detail-type = ["AWS API Call via CloudTrail"]
    detail = merge(
      {
        eventSource = ["route53.amazonaws.com"]
        eventName   = ["ChangeResourceRecordSets"]
      },
      var.filter_events_by_zone ? {
        requestParameters = {
          hostedZoneId = flatten([for z in local.zone_ids : [z, "/hostedzone/${z}"]])
        }
      } : {}
    )
  })

  # Route53 events exist in us-east-1 only; elsewhere they are forwarded to this region's bus.
  forward_from_us_east_1 = local.region != "us-east-1"

  environment = merge(
    {
      PDR_HOSTED_ZONE_ID      = var.hosted_zone_id
      PDR_RECORD_SUFFIX       = var.record_suffix
      PDR_FEDERATION_JOB      = var.federation_job_name
      PDR_FEDERATION_MATCH    = jsonencode(var.federation_match)
      PDR_FEDERATION_SCHEME   = var.federation_scheme
      PDR_CONFIGMAP_NAMESPACE = var.configmap_namespace
      PDR_CONFIGMAP_NAME      = var.configmap_name
      PDR_CONFIGMAP_KEY       = var.configmap_key
      PDR_EKS_CLUSTER_NAME    = var.eks_cluster_name
      RUST_LOG                = var.log_level
    },
    var.target_port == null ? {} : { PDR_TARGET_PORT = tostring(var.target_port) },
    length(var.static_targets) == 0 ? {} : {
      PDR_STATIC_TARGETS = join(",", [for t in var.static_targets : "${t.target}=${t.cluster_id}"])
    },
    var.reload_url == null ? {} : { PDR_RELOAD_URL = var.reload_url },
    var.probes == null ? {} : {
      PDR_PROBE_HOSTED_ZONE_ID   = var.probes.hosted_zone_id
      PDR_PROBE_RECORD_SUFFIX    = var.probes.record_suffix
      PDR_PROBE_EXCLUDE          = join(",", var.probes.exclude)
      PDR_PROBE_PATH             = var.probes.path
      PDR_PROBE_JOB              = var.probes.job_name
      PDR_PROBE_MODULE           = var.probes.module
      PDR_PROBE_EXPORTER_ADDRESS = var.probes.exporter_address
      PDR_PROBE_SCHEME           = var.probes.scheme
    },
  )
}

# ------------------------------------------------------------------------------ IAM

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "ListTheZones"
    actions   = ["route53:ListResourceRecordSets"]
    resources = local.zone_arns
  }
  statement {
    sid       = "DescribeTheCluster"
    actions   = ["eks:DescribeCluster"]
    resources = [data.aws_eks_cluster.this.arn]
  }
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
  dynamic "statement" {
    for_each = var.dead_letter_target_arn == null ? [] : [var.dead_letter_target_arn]
    content {
      sid       = "DeadLetters"
      actions   = can(regex(":sqs:", statement.value)) ? ["sqs:SendMessage"] : ["sns:Publish"]
      resources = [statement.value]
    }
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptEnvironment"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = var.name
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# X-Ray segments and VPC network interfaces cannot be scoped to resources; AWS's managed
# policies are the narrowest form.
resource "aws_iam_role_policy_attachment" "xray" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

resource "aws_iam_role_policy_attachment" "vpc" {
  count      = length(var.vpc_subnet_ids) > 0 ? 1 : 0
  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

# ------------------------------------------------------------------------------ function

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:KMS encryption is optional (var.kms_key_arn); CloudWatch encrypts logs at rest by default
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_272:code signing needs a signing profile the caller owns; the zip comes from the caller's CI
  #checkov:skip=CKV_AWS_117:VPC is optional (var.vpc_subnet_ids); Route53, STS and a public EKS endpoint need none
  #checkov:skip=CKV_AWS_116:dead-letter target is optional (var.dead_letter_target_arn); every run is a full resync, so a lost event is repaired by the next one
  #checkov:skip=CKV_AWS_173:environment holds no secrets (zone ids, names); KMS is optional (var.kms_key_arn)
  function_name    = var.name
  role             = aws_iam_role.this.arn
  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  memory_size      = var.memory_size
  timeout          = var.timeout
  kms_key_arn      = var.kms_key_arn
  # One run at a time: concurrent runs would only race for the ConfigMap's resourceVersion.
  reserved_concurrent_executions = 1

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = "Active"
  }

  dynamic "vpc_config" {
    for_each = length(var.vpc_subnet_ids) > 0 ? [1] : []
    content {
      subnet_ids         = var.vpc_subnet_ids
      security_group_ids = var.vpc_security_group_ids
    }
  }

  dynamic "dead_letter_config" {
    for_each = var.dead_letter_target_arn == null ? [] : [var.dead_letter_target_arn]
    content {
      target_arn = dead_letter_config.value
    }
  }

  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
  tags       = var.tags
}

# Asynchronous invocations (EventBridge) that fail are retried twice by Lambda; the function
# returns its errors to the runtime instead of exiting, so these retries happen.
resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600
}

# ------------------------------------------------------------------------------ events

resource "aws_cloudwatch_event_rule" "route53_changes" {
  name          = "${var.name}-route53-changes"
  description   = "Route53 ChangeResourceRecordSets (CloudTrail) triggers a federation target resync"
  event_pattern = local.event_pattern
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "route53_changes" {
  rule = aws_cloudwatch_event_rule.route53_changes.name
  arn  = aws_lambda_function.this.arn
}

resource "aws_lambda_permission" "route53_changes" {
  statement_id  = "AllowRoute53ChangeEvents"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.route53_changes.arn
}

# us-east-1 → this region's default bus, when the function runs elsewhere.
resource "aws_cloudwatch_event_rule" "forward" {
  count         = local.forward_from_us_east_1 ? 1 : 0
  provider      = aws.us_east_1
  name          = "${var.name}-route53-forward"
  description   = "Forwards Route53 ChangeResourceRecordSets events to ${local.region}"
  event_pattern = local.event_pattern
  tags          = var.tags
}

data "aws_iam_policy_document" "forward_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "forward" {
  count              = local.forward_from_us_east_1 ? 1 : 0
  name               = "${var.name}-event-forward"
  assume_role_policy = data.aws_iam_policy_document.forward_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "forward" {
  count = local.forward_from_us_east_1 ? 1 : 0
  name  = "put-events"
  role  = aws_iam_role.forward[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "events:PutEvents"
      Resource = "arn:${local.partition}:events:${local.region}:${local.account}:event-bus/default"
    }]
  })
}

resource "aws_cloudwatch_event_target" "forward" {
  count    = local.forward_from_us_east_1 ? 1 : 0
  provider = aws.us_east_1
  rule     = aws_cloudwatch_event_rule.forward[0].name
  arn      = "arn:${local.partition}:events:${local.region}:${local.account}:event-bus/default"
  role_arn = aws_iam_role.forward[0].arn
}

resource "aws_cloudwatch_event_rule" "schedule" {
  count               = var.schedule_expression == null ? 0 : 1
  name                = "${var.name}-schedule"
  description         = "Periodic federation target resync (safety net for missed events)"
  schedule_expression = var.schedule_expression
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "schedule" {
  count = var.schedule_expression == null ? 0 : 1
  rule  = aws_cloudwatch_event_rule.schedule[0].name
  arn   = aws_lambda_function.this.arn
}

resource "aws_lambda_permission" "schedule" {
  count         = var.schedule_expression == null ? 0 : 1
  statement_id  = "AllowScheduledResync"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule[0].arn
}

# ------------------------------------------------------------------------------ Kubernetes access

# The role becomes a member of one Kubernetes group, nothing more: no system:masters, no
# cluster-wide access policy.
resource "aws_eks_access_entry" "this" {
  cluster_name      = var.eks_cluster_name
  principal_arn     = aws_iam_role.this.arn
  kubernetes_groups = [var.kubernetes_group]
  type              = "STANDARD"
  tags              = var.tags
}

# get + update on the one ConfigMap (the same rules as
# prometheus-dns-registration/tests/fixtures/role-rules.json, which the integration test
# applies to a real API server; ./check compares the two).
resource "kubernetes_role_v1" "this" {
  count = var.manage_kubernetes_rbac ? 1 : 0
  metadata {
    name      = var.name
    namespace = var.configmap_namespace
  }
  rule {
    api_groups     = [""]
    resources      = ["configmaps"]
    resource_names = [var.configmap_name]
    verbs          = ["get", "update"]
  }
}

resource "kubernetes_role_binding_v1" "this" {
  count = var.manage_kubernetes_rbac ? 1 : 0
  metadata {
    name      = var.name
    namespace = var.configmap_namespace
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.this[0].metadata[0].name
  }
  subject {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Group"
    name      = var.kubernetes_group
  }
}
