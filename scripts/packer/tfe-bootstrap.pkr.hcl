# Packer: bake tfe-bootstrap, its config and the systemd oneshot into the TFE
# image; the unit bootstraps TFE on the first boot of each instance (and is a
# no-op on later boots). Secrets are not baked: the instance writes
# /etc/tfe-bootstrap/env from its secret store at boot.
build {
  sources = ["source.amazon-ebs.tfe"]

  provisioner "file" {
    source      = "target/release/tfe-bootstrap"
    destination = "/tmp/tfe-bootstrap"
  }
  provisioner "file" {
    source      = "config/tfe-bootstrap.toml"
    destination = "/tmp/tfe-bootstrap.toml"
  }
  provisioner "file" {
    source      = "scripts/systemd/tfe-bootstrap.service"
    destination = "/tmp/tfe-bootstrap.service"
  }

  provisioner "shell" {
    inline = [
      "sudo install -m 0755 /tmp/tfe-bootstrap /usr/local/bin/tfe-bootstrap",
      "sudo install -d -m 0700 /etc/tfe-bootstrap",
      "sudo install -m 0600 /tmp/tfe-bootstrap.toml /etc/tfe-bootstrap/config.toml",
      # Fail the image build on a bad config: validate sends nothing to TFE.
      "sudo TFE_ADMIN_PASSWORD=placeholder-for-validate SMTP_PASSWORD=placeholder TFE_IACT_TOKEN=placeholder /usr/local/bin/tfe-bootstrap validate --config /etc/tfe-bootstrap/config.toml",
      "sudo install -m 0644 /tmp/tfe-bootstrap.service /etc/systemd/system/tfe-bootstrap.service",
      "sudo systemctl enable tfe-bootstrap.service",
    ]
  }
}
