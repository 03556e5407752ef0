# The function in eu-west-1 beside the central EKS cluster; Route53's CloudTrail events are
# forwarded from us-east-1 by the module.
provider "aws" {
  region = "eu-west-1"
}

provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
}

data "aws_eks_cluster" "central" {
  name = "central"
}

data "aws_eks_cluster_auth" "central" {
  name = "central"
}

provider "kubernetes" {
  host                   = data.aws_eks_cluster.central.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.central.certificate_authority[0].data)
  token                  = data.aws_eks_cluster_auth.central.token
}

module "prometheus_dns_registration" {
  source = "../.."
  providers = {
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }

  package_path     = "${path.root}/bootstrap.zip"
  architecture     = "x86_64"
  hosted_zone_id   = "Z0123456789PROMETHEUS"
  record_suffix    = ".prometheus.internal."
  target_port      = 9090
  eks_cluster_name = "central"

  static_targets = [
    { target = "prometheus-operated.monitoring.svc:9090", cluster_id = "C&C" },
  ]
  federation_match = ["{job=\"kubernetes-pods\"}", "{__name__=~\"job:.*\"}"]

  probes = {
    hosted_zone_id   = "Z0123456789INSTALLS"
    record_suffix    = ".installations.example.com."
    exclude          = ["www.installations.example.com."]
    path             = "/api/v4/system/ping"
    exporter_address = "blackbox-exporter.monitoring:9115"
  }

  configmap_namespace = "monitoring"
  configmap_name      = "prometheus"
  reload_url          = "http://prometheus.monitoring:9090/-/reload"

  vpc_subnet_ids         = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
  vpc_security_group_ids = ["sg-0123456789abcdef0"]

  tags = { team = "observability" }
}

output "function_arn" {
  value = module.prometheus_dns_registration.function_arn
}
