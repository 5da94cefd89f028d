#!/usr/bin/env bash
# config_doc.sh AGENT DOC - docs/config.md must be exactly what
# `tern-agent --config-doc` prints (both come from the same tables).
set -u
if ! diff -u "$2" <("$1" --config-doc); then
  echo "docs/config.md is out of date: regenerate with"
  echo "  build/agent/tern-agent --config-doc > docs/config.md"
  exit 1
fi
echo "docs/config.md matches the config tables"
