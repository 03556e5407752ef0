terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
      # Route53 is a global service: its CloudTrail events reach EventBridge in us-east-1
      # only. Pass the same provider twice when the function itself runs in us-east-1.
      configuration_aliases = [aws.us_east_1]
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.20"
    }
  }
}
