# Sourced by the command-line tests: counters and the check that runs a command and
# compares its exit status and output.
passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { echo "FAILED: $*"; failed=$((failed + 1)); }
expect() {  # expect NAME EXIT_CODE PATTERN -- command...
  local name=$1 code=$2 pattern=$3
  shift 4
  local output status
  output=$("$@" 2>&1)
  status=$?
  if [[ $status -ne $code ]]; then fail "$name: exit $status, expected $code: $output"; return; fi
  if [[ -n $pattern ]] && ! grep -q -- "$pattern" <<<"$output"; then fail "$name: output lacks '$pattern': $output"; return; fi
  pass
}
