#!/bin/sh
# Create the seed's figure 8 on a running controller: examples/figure8/create.sh [BASE_URL]
# The file name is NN-<collection>-<resourceId>.json; PUTs run in file-name order.
set -eu
NC=${1:-http://127.0.0.1:8080/networking/v1}
cd "$(dirname "$0")"
for file in [0-9][0-9]-*.json; do
  name=${file%.json}; rest=${name#*-}; collection=${rest%%-*}; id=${rest#*-}
  printf '%s ' "PUT /$collection/$id"
  curl -sS -f -o /dev/null -w '%{http_code}\n' -X PUT -H 'Content-Type: application/json' \
       --data "@$file" "$NC/$collection/$id"
done
