output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the Lambda function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's IAM role (the EKS access entry's principal)."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the function."
  value       = aws_cloudwatch_log_group.this.name
}

output "event_rule_arn" {
  description = "EventBridge rule that triggers a resync on Route53 changes (in the function's region)."
  value       = aws_cloudwatch_event_rule.route53_changes.arn
}

output "kubernetes_group" {
  description = "Kubernetes group the function acts as."
  value       = var.kubernetes_group
}
