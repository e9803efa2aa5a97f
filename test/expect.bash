# expect.bash — sourced by the test/*.sh scripts (not a test itself: run_tests.sh
# runs test/*.sh only). Helpers:
#
#   expect NAME WANT_STATUS PATTERN COMMAND...   (below: python_with MODULE...,
#                                                 train_gpt_usable)
#
# runs COMMAND (stdout and stderr together) and prints "PASS NAME" when it
# exits with WANT_STATUS and its output matches the extended regex PATTERN,
# else "FAIL NAME: why" with the last lines of the output.
expect() {
    local name=$1 want=$2 pattern=$3 out status
    shift 3
    out=$("$@" 2>&1)
    status=$?
    if [ "$status" -ne "$want" ]; then
        echo "FAIL $name: exit status $status, wanted $want; output: $(echo "$out" | tail -n 3)"
    elif ! grep -qE -- "$pattern" <<<"$out"; then
        echo "FAIL $name: output lacks /$pattern/: $(echo "$out" | tail -n 3)"
    else
        echo "PASS $name"
    fi
}

# python_with MODULE...: the first of python3, /usr/bin/python3 that imports
# every MODULE, on stdout (nothing when neither does).
python_with() {
    local candidate modules
    modules=$(IFS=,; echo "$*")
    for candidate in python3 /usr/bin/python3; do
        if "$candidate" -c "import $modules" >/dev/null 2>&1; then echo "$candidate"; return; fi
    done
}

# train_gpt_usable: true when ./train_gpt (run from the repository root) is
# built and no source file is newer than it. Files only: a directory's mtime
# moves when the tree is copied (as onto a device machine) without any
# source changing.
train_gpt_usable() {
    [ -x ./train_gpt ] && [ -z "$(find train_gpt.cu llmc -type f -newer train_gpt -print -quit)" ]
}
