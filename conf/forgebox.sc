[forgebox-gitlab-http]
title="GitLab (HTTP)"
desc="Forgebox: GitLab web pages, API and Git over HTTP"
port_forward="yes"
dst.ports="[[.HTTPPort]]/tcp"

[forgebox-gitlab-ssh]
title="GitLab (SSH)"
desc="Forgebox: Git over SSH"
port_forward="yes"
dst.ports="[[.SSHPort]]/tcp"
