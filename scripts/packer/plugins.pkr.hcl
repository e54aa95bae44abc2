# Where the amazon-ebs builder comes from: Packer 1.7 and newer install it
# with `packer init scripts/packer`. Packer 1.6 (Debian 12's package) has
# the builder built in and refuses this block ("Blocks of type
# required_plugins are not expected here"): there, build without this file
# (README.md here says how).
packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.0"
    }
  }
}
