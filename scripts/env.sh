# Sourced by the scripts: point movierec at the shared dataset mirror when it is beside the project.
if [ -z "${MOVIEREC_MIRROR:-}" ] && [ -d "../shared/datasets" ]; then
  export MOVIEREC_MIRROR="$(cd ../shared/datasets && pwd)"
fi
