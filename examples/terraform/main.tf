# A small configuration of built-in resources only (no provider downloads),
# for examples/terraform-drift.rhai.
variable "image_tag" {
  type    = string
  default = "v1"
}

variable "replicas" {
  type    = number
  default = 2
}

resource "terraform_data" "deployment" {
  input            = { tag = var.image_tag, replicas = var.replicas }
  triggers_replace = [var.image_tag]
}

output "deployment" {
  value = terraform_data.deployment.output
}
