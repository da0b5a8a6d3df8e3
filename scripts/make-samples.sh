#!/usr/bin/env bash
# Regenerates samples/: short two-channel 8 kHz "calls" spoken by espeak-ng's Korean
# voice (agent on channel 0, customer on channel 1), for the demo and for trying the box.
# The host tool's `corpus synth` will replace these with telephone-channel speech.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p samples

call() { # name agent-text customer-text
  local name=$1
  espeak-ng -v ko -s 150 -w "$tmp/a.wav" "$2"
  espeak-ng -v ko+f3 -s 140 -w "$tmp/c.wav" "$3"
  local alen; alen=$(soxi -D "$tmp/a.wav")
  sox "$tmp/a.wav" -r 8000 "$tmp/a8.wav" pad 0.4 3.0
  sox "$tmp/c.wav" -r 8000 "$tmp/c8.wav" pad "$(python3 -c "print($alen + 1.0)")" 0.6
  sox -M "$tmp/a8.wav" "$tmp/c8.wav" -b 16 "samples/$name.wav"
}

call card-limit "안녕하세요 신한카드 상담원입니다" "카드 한도를 올리고 싶은데요"
call refund "네 고객님 무엇을 도와드릴까요" "요금이 두 번 나갔어요 환불해 주세요"
call thanks "상담 도와드렸습니다 감사합니다" "친절하게 설명해 주셔서 고마워요"
ls -l samples
