# One hub serving two member accounts: the hub account runs the five functions once in this
# Region; each member forwards its fleet's events to the hub's bus, holds the role the hub
# assumes, and the lifecycle hooks of its groups. Each member here has a small ECS-on-EC2 fleet
# of its own (./fleet) to show the hooks and the scope. Apply from the hub account with
# credentials that may assume member_admin_role_name in each member: `make build`, then
# `terraform init && terraform apply`.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30, < 7.0"
    }
  }
}

variable "region" {
  description = "AWS Region (the hub and the members' fleets in it)."
  type        = string
  default     = "eu-west-1"
}

variable "member_a_account_id" {
  description = "The first member account."
  type        = string
}

variable "member_b_account_id" {
  description = "The second member account."
  type        = string
}

variable "member_admin_role_name" {
  description = "The role Terraform assumes in each member to apply there (Organizations creates OrganizationAccountAccessRole in accounts it creates)."
  type        = string
  default     = "OrganizationAccountAccessRole"
}

variable "image_id" {
  description = "ECS-optimized AMI for the members' instances (the SSM parameter /aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id)."
  type        = string
}

variable "zip_paths" {
  description = "Function name => zip (default: the `make build` outputs in this checkout)."
  type        = map(string)
  default     = {}
}

provider "aws" {
  region = var.region
}

provider "aws" {
  alias  = "member_a"
  region = var.region
  assume_role {
    role_arn = "arn:aws:iam::${var.member_a_account_id}:role/${var.member_admin_role_name}"
  }
}

provider "aws" {
  alias  = "member_b"
  region = var.region
  assume_role {
    role_arn = "arn:aws:iam::${var.member_b_account_id}:role/${var.member_admin_role_name}"
  }
}

locals {
  zips = merge({ for f in ["spot-interruption", "asg-lifecycle", "ecs-deployment", "alarm-fanout", "instance-maintenance"] : f => "${path.module}/../../../target/lambda/${f}/bootstrap.zip" }, var.zip_paths)
  # The same scope in every account: the hub's settings apply to each member's events.
  cluster = "workers"
  group   = "workers"
}

module "hub" {
  source             = "../.."
  zip_paths          = local.zips
  member_account_ids = [var.member_a_account_id, var.member_b_account_id]
  account_names = {
    (var.member_a_account_id) = "payments-prod"
    (var.member_b_account_id) = "search-prod"
  }
  ecs_cluster_names        = [local.cluster]
  auto_scaling_group_names = [local.group]
  # The hooks live in the members' groups (modules/member creates them there).
  create_lifecycle_hooks = false
  lifecycle_hook_names   = ["fleetguard-drain"]
  rebalance_action       = "drain"
}

module "fleet_a" {
  source    = "./fleet"
  providers = { aws = aws.member_a }
  name      = local.group
  cluster   = local.cluster
  image_id  = var.image_id
}

module "member_a" {
  source                   = "../../modules/member"
  providers                = { aws = aws.member_a }
  hub_event_bus_arn        = module.hub.hub_event_bus_arn
  hub_role_arns            = module.hub.member_trust_role_arns
  ecs_cluster_names        = [local.cluster]
  auto_scaling_group_names = [module.fleet_a.group_name]
  rebalance_action         = "drain"
}

module "fleet_b" {
  source    = "./fleet"
  providers = { aws = aws.member_b }
  name      = local.group
  cluster   = local.cluster
  image_id  = var.image_id
}

module "member_b" {
  source                   = "../../modules/member"
  providers                = { aws = aws.member_b }
  hub_event_bus_arn        = module.hub.hub_event_bus_arn
  hub_role_arns            = module.hub.member_trust_role_arns
  ecs_cluster_names        = [local.cluster]
  auto_scaling_group_names = [module.fleet_b.group_name]
  rebalance_action         = "drain"
}

output "hub" {
  description = "The hub: its bus, and the roles the members trust."
  value = {
    event_bus    = module.hub.hub_event_bus_arn
    trusted      = module.hub.member_trust_role_arns
    failed_queue = module.hub.failed_events_queue_arn
  }
}

output "members" {
  description = "Member account => the role the hub assumes there."
  value = {
    (var.member_a_account_id) = module.member_a.member_role_arn
    (var.member_b_account_id) = module.member_b.member_role_arn
  }
}
