#!/bin/sh
# The MLflow tracking server's start-up on AKS; infra/mlflow_server.py runs it as the
# container's command (MLflow image: /opt/recplat/start-server.sh).
#
#   start-server.sh SECRETS_DIR [mlflow server option ...]
#
# SECRETS_DIR is where the CSI driver mounts the Key Vault secrets, one file each:
# mlflow-backend-store-uri, mlflow-admin-password and mlflow-flask-secret-key. The script
# writes MLflow's basic-auth config to $MLFLOW_AUTH_CONFIG_PATH (the pod's private emptyDir,
# readable by the server's user only), exports the Flask session key, then execs the server
# with the options given: the server becomes PID 1 and receives Kubernetes' SIGTERM itself.
# No secret is ever in the pod spec, as an argument or as an environment value.
set -eu
secrets="${1:?usage: start-server.sh SECRETS_DIR [mlflow server option ...]}"
shift
config="${MLFLOW_AUTH_CONFIG_PATH:?set MLFLOW_AUTH_CONFIG_PATH to where the auth config goes}"
umask 077
store_uri="$(cat "$secrets/mlflow-backend-store-uri")"
admin_password="$(cat "$secrets/mlflow-admin-password")"
mkdir -p "$(dirname "$config")"
cat >"$config" <<CONFIG
[mlflow]
default_permission = NO_PERMISSIONS
database_uri = $store_uri
admin_username = admin
admin_password = $admin_password
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
CONFIG
MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$secrets/mlflow-flask-secret-key")"
export MLFLOW_FLASK_SERVER_SECRET_KEY
exec mlflow server --app-name basic-auth --backend-store-uri "$store_uri" "$@"
