#!/usr/bin/env bash
# Package and deploy Host Checker to AWS with CloudFormation.
#
# Usage: infra/deploy.sh --stage dev|prod [options]
#
#   --stage dev|prod        Chalice stage and stack suffix (required)
#   --region REGION         home region (default: $AWS_REGION / $AWS_DEFAULT_REGION / eu-west-1)
#   --agents LIST           regional agents, comma-separated REGION:NAME[:LOCATION] entries, e.g.
#                           "eu-central-1:Frankfurt:Frankfurt DE,us-east-1:Virginia,ap-southeast-1:Singapore"
#                           (at most 3; their VPCs get 10.64/16, 10.65/16, 10.66/16)
#   --skip-core             do not (re)deploy infra/core.yaml
#   --skip-ui               do not build/upload the UI
#   --core-params "K=V ..." extra parameter overrides for the core stack (e.g. DbMultiAz=true)
#   --dry-run               package locally, print the AWS commands instead of running them
#   -h, --help              this help
#
# Steps: 1) core stack (VPC, RDS + Proxy, ElastiCache, secrets, UI bucket + CloudFront);
# 2) `chalice package --stage S --merge-template infra/app-merge.yaml` -> infra/build/S/,
#    `aws cloudformation package` (zip to the artifacts bucket) and deploy of the app stack
#    (API Gateway, Lambdas in the VPC, the sweeper's EventBridge schedule);
# 3) the UI (frontend/dist) to S3 with config.json {"apiUrl": ...}, CloudFront invalidation;
# 4) per agent region: infra/agent.yaml, then the core stack again with the peerings.
# Needs: the AWS CLI v2 with credentials, .venv (chalice), npm for the UI. See infra/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
usage() { sed -n '2,/^[^#]/{/^#/!d;s/^# \{0,1\}//;p}' "$0"; }   # the comment block above
die() { echo "deploy: $*" >&2; exit 1; }

STAGE="" REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-eu-west-1}}" AGENTS="" SKIP_CORE=0 SKIP_UI=0
CORE_PARAMS="" DRY=0
need() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --stage|--region|--agents|--core-params) need "$@" ;;
  esac
  case "$1" in
    --stage) STAGE="${2:-}"; shift 2 ;;
    --stage=*) STAGE="${1#*=}"; shift ;;
    --region) REGION="${2:-}"; shift 2 ;;
    --agents) AGENTS="${2:-}"; shift 2 ;;
    --core-params) CORE_PARAMS="${2:-}"; shift 2 ;;
    --skip-core) SKIP_CORE=1; shift ;;
    --skip-ui) SKIP_UI=1; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
case "$STAGE" in dev|prod) ;; "") die "--stage dev|prod is required (see --help)" ;; *) die "--stage must be dev or prod, not '$STAGE'" ;; esac

# --agents is checked before anything is deployed
ENTRIES=()
if [ -n "$AGENTS" ]; then
  IFS=',' read -r -a ENTRIES <<<"$AGENTS"
  [ "${#ENTRIES[@]}" -le 3 ] || die "--agents takes at most 3 regions (the core stack has 3 peering slots)"
  for entry in "${ENTRIES[@]}"; do
    IFS=':' read -r AREGION ANAME ALOC <<<"$entry"
    [ -n "$AREGION" ] && [ -n "$ANAME" ] || die "bad --agents entry '$entry' (REGION:NAME[:LOCATION])"
    [[ "$ANAME" =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,62}$ ]] \
      || die "agent name '$ANAME' must be letters, digits and '-' (it is part of a stack name)"
    [[ "${ALOC:-}" =~ ^[A-Za-z0-9\ .()_-]*$ ]] \
      || die "agent location '$ALOC' may hold letters, digits, spaces and . ( ) _ - only"
  done
fi

CHALICE="$ROOT/.venv/bin/chalice"; [ -x "$CHALICE" ] || CHALICE="chalice"
CORE_STACK="hostchecker-$STAGE-core"
APP_STACK="hostchecker-$STAGE-app"
BUILD="$ROOT/infra/build/$STAGE"

run() {  # run or print an AWS/chalice command
  if [ "$DRY" -eq 1 ]; then printf '+'; printf ' %q' "$@"; printf '\n'; else "$@"; fi
}
out() {  # out STACK KEY [REGION] -> stack output value
  if [ "$DRY" -eq 1 ]; then echo "<$2>"; return; fi
  aws cloudformation describe-stacks --region "${3:-$REGION}" --stack-name "$1" \
    --query "Stacks[0].Outputs[?OutputKey=='$2'].OutputValue" --output text
}
step() { echo "==> $*"; }

if [ "$DRY" -eq 0 ]; then
  command -v aws >/dev/null || die "the AWS CLI is not installed (https://docs.aws.amazon.com/cli/)"
  aws sts get-caller-identity --region "$REGION" >/dev/null 2>&1 || die "no AWS credentials (aws configure / AWS_PROFILE)"
fi
[ -f "$ROOT/app.py" ] || die "app.py not found in $ROOT"

# ------------------------------------------------------------------ 1. core
if [ "$SKIP_CORE" -eq 0 ]; then
  step "core stack $CORE_STACK in $REGION (first run: ~20 min for RDS, ElastiCache, CloudFront)"
  # shellcheck disable=SC2086
  run aws cloudformation deploy --region "$REGION" --stack-name "$CORE_STACK" \
    --template-file "$ROOT/infra/core.yaml" --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
    --parameter-overrides Stage="$STAGE" $CORE_PARAMS --tags project=hostchecker stage="$STAGE"
fi
ARTIFACTS="$(out "$CORE_STACK" ArtifactsBucketName)"

# ------------------------------------------------------------------ 2. app
step "chalice package --stage $STAGE -> $BUILD"
rm -rf "$BUILD"; mkdir -p "$BUILD"
# runs in --dry-run too: packaging is local and needs no credentials
(cd "$ROOT" && AWS_DEFAULT_REGION="$REGION" "$CHALICE" package --stage "$STAGE" --template-format yaml \
  --merge-template "$ROOT/infra/app-merge.yaml" "$BUILD")
step "app stack $APP_STACK"
run aws cloudformation package --region "$REGION" --template-file "$BUILD/sam.yaml" \
  --s3-bucket "$ARTIFACTS" --s3-prefix "builds/$STAGE" --output-template-file "$BUILD/packaged.yaml"
run aws cloudformation deploy --region "$REGION" --stack-name "$APP_STACK" \
  --template-file "$BUILD/packaged.yaml" --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
  --no-fail-on-empty-changeset --parameter-overrides Stage="$STAGE" --tags project=hostchecker stage="$STAGE"
API_URL="$(out "$APP_STACK" EndpointURL)"
WS_URL="$(out "$APP_STACK" WebsocketConnectEndpointURL)"  # live results (chalice package's WebSocket API output)
if grep -q '^  Migrate:' "$BUILD/sam.yaml" 2>/dev/null; then
  step "database migrations (the app's Migrate function)"
  if [ "$DRY" -eq 1 ]; then MIGRATE_FN="<Migrate>"; else
    MIGRATE_FN="$(aws cloudformation describe-stack-resource --region "$REGION" --stack-name "$APP_STACK" \
      --logical-resource-id Migrate --query StackResourceDetail.PhysicalResourceId --output text)"; fi
  run aws lambda invoke --region "$REGION" --function-name "$MIGRATE_FN" "$BUILD/migrate.out"
fi

# ------------------------------------------------------------------ 3. UI
if [ "$SKIP_UI" -eq 0 ] && [ -f "$ROOT/frontend/package.json" ]; then
  step "UI: build and upload"
  UI_BUCKET="$(out "$CORE_STACK" UiBucketName)"
  (cd "$ROOT/frontend" && run npm ci && run npm run build)
  run aws s3 sync "$ROOT/frontend/dist" "s3://$UI_BUCKET" --delete --exclude config.json --region "$REGION"
  # The UI's stage settings: the API, the WebSocket for live results, and whether every user's checks are
  # listed (HC_PUBLIC_LIST, off on prod: .chalice/config.json).
  PUBLIC_LIST=true; [ "$STAGE" = "prod" ] && PUBLIC_LIST=false
  printf '{"apiUrl": "%s", "wsUrl": "%s", "publicList": %s}\n' "${API_URL%/}" "$WS_URL" "$PUBLIC_LIST" > "$BUILD/config.json"
  run aws s3 cp "$BUILD/config.json" "s3://$UI_BUCKET/config.json" --cache-control no-cache --region "$REGION"
  if [ "$DRY" -eq 1 ]; then
    run aws cloudfront create-invalidation --distribution-id "$(out "$CORE_STACK" UiDistributionId)" --paths '/*'
  else
    run aws cloudfront create-invalidation --distribution-id "$(out "$CORE_STACK" UiDistributionId)" --paths '/*' >/dev/null
  fi
fi

# ------------------------------------------------------------------ 4. agents
if [ -n "$AGENTS" ]; then
  step "agent bundle"
  BUNDLE="$BUILD/hostchecker-agent.tar.gz"
  tar -czf "$BUNDLE" -C "$ROOT" --exclude=__pycache__ agent chalicelib/targets.py chalicelib/protocol.py chalicelib/httpopts.py \
    requirements-agent.txt infra/agent
  KEY="builds/$STAGE/agent-$(sha256sum "$BUNDLE" | cut -c1-16).tar.gz"
  run aws s3 cp "$BUNDLE" "s3://$ARTIFACTS/$KEY" --region "$REGION"
  PEER_PARAMS=""
  i=0
  for entry in "${ENTRIES[@]}"; do
    i=$((i + 1))
    IFS=':' read -r AREGION ANAME ALOC <<<"$entry"
    ALOC="${ALOC:-$ANAME}"
    CIDR="10.$((63 + i)).0.0/16"
    step "agent $ANAME in $AREGION ($CIDR)"
    run aws cloudformation deploy --region "$AREGION" --stack-name "hostchecker-$STAGE-agent-$ANAME" \
      --template-file "$ROOT/infra/agent.yaml" --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
      --tags project=hostchecker stage="$STAGE" --parameter-overrides \
      Stage="$STAGE" AgentName="$ANAME" AgentLocation="$ALOC" VpcCidr="$CIDR" HomeRegion="$REGION" \
      HomeVpcId="$(out "$CORE_STACK" VpcId)" HomeVpcCidr="$(out "$CORE_STACK" VpcCidr)" \
      RedisEndpoint="$(out "$CORE_STACK" RedisEndpoint)" RedisPort="$(out "$CORE_STACK" RedisPort)" \
      RedisAuthSecretArn="$(out "$CORE_STACK" RedisAuthSecretArn)" \
      RegistrationTokenSecretArn="$(out "$CORE_STACK" RegistrationTokenSecretArn)" \
      ApiUrl="$API_URL" ArtifactsBucket="$ARTIFACTS" AgentBundleKey="$KEY"
    PEER_PARAMS="$PEER_PARAMS Agent${i}PeeringConnectionId=$(out "hostchecker-$STAGE-agent-$ANAME" PeeringConnectionId "$AREGION") Agent${i}Cidr=$CIDR"
  done
  step "core stack: routes and Redis access for the agent VPCs"
  # shellcheck disable=SC2086
  run aws cloudformation deploy --region "$REGION" --stack-name "$CORE_STACK" \
    --template-file "$ROOT/infra/core.yaml" --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
    --parameter-overrides Stage="$STAGE" $CORE_PARAMS $PEER_PARAMS --tags project=hostchecker stage="$STAGE"
fi

echo
echo "API: $API_URL"
echo "UI:  $(out "$CORE_STACK" UiUrl)"
