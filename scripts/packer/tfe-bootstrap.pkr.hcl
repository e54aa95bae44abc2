# Packer: bake tfe-bootstrap, its config and the systemd oneshot into the TFE
# image; the unit bootstraps TFE on the first boot of each instance (and is a
# no-op on later boots). Secrets are not baked: the instance writes
# /etc/tfe-bootstrap/env from its secret store at boot (the unit reads it if
# it is there).
#
# Inputs, all variables below: the base AMI (a TFE image or its base OS), the
# region, and the package built by scripts/release.sh (dist/). Every other
# file it names is in this repository. Run from the repository's root:
#   scripts/release.sh
#   packer init scripts/packer && packer build -var source_ami=ami-... scripts/packer
# Packer 1.7 or newer (plugins.pkr.hcl); with Debian's 1.6 see README.md
# here. The provisioning itself is provision.sh, which the tests run with
# a null source (scripts/packer/run-example.sh).

variable "region" {
  type        = string
  default     = "us-east-1"
  description = "AWS region to build the image in."
}

variable "source_ami" {
  type        = string
  description = "The AMI to start from: a TFE host image, or its base OS (RHEL 8/9, Ubuntu 20.04-24.04, Amazon Linux 2/2023)."
}

variable "instance_type" {
  type        = string
  default     = "m5.large"
  description = "Build instance type (an arm64 type such as m7g.large for an arm64 AMI, with arch = \"aarch64\")."
}

variable "ssh_username" {
  type        = string
  default     = "ec2-user"
  description = "Login user of the source AMI (ubuntu on Ubuntu)."
}

variable "version" {
  type        = string
  default     = "0.1.0"
  description = "tfe-bootstrap release version, as in dist/ (scripts/release.sh)."
}

variable "arch" {
  type        = string
  default     = "x86_64"
  description = "x86_64 or aarch64: picks the .rpm from dist/."
}

variable "package" {
  type        = string
  default     = ""
  description = "Path of the package to install; default dist/tfe-bootstrap-<version>-1.<arch>.rpm built by scripts/release.sh (use the .deb and dpkg on Ubuntu)."
}

variable "config_file" {
  type        = string
  default     = "config/starter.toml"
  description = "The tfe-bootstrap config to bake in as /etc/tfe-bootstrap/config.toml."
}

locals {
  package = var.package != "" ? var.package : "dist/tfe-bootstrap-${var.version}-1.${var.arch}.rpm"
  # Uploaded under its own name: provision.sh tells a .deb from an .rpm.
  staged = "/tmp/${basename(local.package)}"
}

source "amazon-ebs" "tfe" {
  region        = var.region
  source_ami    = var.source_ami
  instance_type = var.instance_type
  ssh_username  = var.ssh_username
  ami_name      = "tfe-bootstrap-${var.version}-${var.arch}-{{timestamp}}"
}

build {
  sources = ["source.amazon-ebs.tfe"]

  provisioner "file" {
    source      = local.package
    destination = local.staged
  }
  provisioner "file" {
    source      = var.config_file
    destination = "/tmp/tfe-bootstrap.toml"
  }

  # Installs the package, bakes in the config (0600), fails the image build
  # on a bad config (validate sends nothing to TFE; secrets may be absent
  # until the first boot) and enables the unit.
  provisioner "shell" {
    script           = "scripts/packer/provision.sh"
    environment_vars = ["PACKAGE=${local.staged}", "CONFIG=/tmp/tfe-bootstrap.toml"]
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }
}
