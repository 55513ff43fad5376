#!/bin/bash
# LocalStack init hook (READY stage) for Docker users: deploys the same CloudFormation stack
# that python -m scripts.deploy_local deploys in host mode (infra/local.yaml, stack hostchecker-local):
# S3 website bucket for the UI, the secret hostchecker/local/app, SSM parameters under
# /hostchecker/local/ and the EventBridge rule of the sweeper. Idempotent.
#
# Mounted by localstack/docker-compose.yml; values come from the HC_* variables set there.
# In host mode this folder is not used: python -m scripts.deploy_local does the same from the host
# (it also uploads the built UI and writes config.json).
set -euo pipefail

TEMPLATE="${HC_LOCAL_TEMPLATE:-/opt/hostchecker/infra/local.yaml}"
STACK=hostchecker-local
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
json_escape() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1])[1:-1])' "$1"; }

params=(
  "ParameterKey=RegistrationToken,ParameterValue=$(json_escape "${HC_REGISTRATION_TOKEN:-local-registration-token}")"
  "ParameterKey=AdminToken,ParameterValue=$(json_escape "${HC_ADMIN_TOKEN:-local-admin-token}")"
  "ParameterKey=DatabaseUrl,ParameterValue=$(json_escape "${HC_DATABASE_URL:-postgresql://hostchecker:hostchecker@127.0.0.1:5432/hostchecker}")"
  "ParameterKey=RedisUrl,ParameterValue=$(json_escape "${HC_REDIS_URL:-redis://127.0.0.1:6379/0}")"
  "ParameterKey=ApiUrl,ParameterValue=${HC_API_URL:-http://127.0.0.1:8000}"
)

if awslocal cloudformation describe-stacks --stack-name "$STACK" >/dev/null 2>&1; then
  out=$(awslocal cloudformation update-stack --stack-name "$STACK" --template-body "file://$TEMPLATE" \
        --parameters "${params[@]}" 2>&1) || {
    case "$out" in *"No updates are to be performed"*) echo "hostchecker: stack $STACK up to date"; exit 0 ;; esac
    echo "hostchecker: update of $STACK failed: $out" >&2; exit 1; }
  awslocal cloudformation wait stack-update-complete --stack-name "$STACK"
else
  awslocal cloudformation create-stack --stack-name "$STACK" --template-body "file://$TEMPLATE" \
    --parameters "${params[@]}" >/dev/null
  awslocal cloudformation wait stack-create-complete --stack-name "$STACK"
fi
echo "hostchecker: stack $STACK deployed; UI: http://hostchecker-local-ui.s3-website.localhost:4566/"
