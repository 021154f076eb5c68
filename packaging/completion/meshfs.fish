# meshfs.fish - fish completion for meshfs (issue 14). The commands and
# each command's flags are read from `meshfs --help` and `meshfs CMD
# --help` as you type, so they follow the installed binary and cannot
# drift from it; store directories after --store, meshfs mount points for
# the commands that take one, directories for mount, -o's options.
# tests/system/fs_completion.sh checks it against --help.

function __meshfs_commands
    command meshfs --help 2>/dev/null | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } /^$/ { on = 0 }'
end

# the flags `meshfs CMD --help` names
function __meshfs_flags
    set -l cmd (commandline -opc)[2]
    command meshfs $cmd --help 2>/dev/null | string match -ar -- '(?:^|[][ |(*])(--?[a-z][a-z-]*)' | string match -r -- '^--?[a-z][a-z-]*$' | sort -u
end

# the word before the cursor is $argv[1]
function __meshfs_after
    set -l t (commandline -opc)
    test (count $t) -ge 2; and test "$t[-1]" = "$argv[1]"
end

# the command is one of $argv and the cursor is on an argument
function __meshfs_arg_of
    set -l t (commandline -opc)
    test (count $t) -ge 2; and contains -- $t[2] $argv; or return 1
    not string match -q -- '-*' (commandline -ct)
end

function __meshfs_mounts
    awk '$3 == "fuse.meshfs" { print $2 }' /proc/self/mounts 2>/dev/null
end

complete -c meshfs -f
complete -c meshfs -n __fish_use_subcommand -a '(__meshfs_commands)'
complete -c meshfs -n 'not __fish_use_subcommand; and string match -q -- "-*" (commandline -ct)' -a '(__meshfs_flags)'
complete -c meshfs -n '__meshfs_after --store' -x -a '(__fish_complete_directories)'
complete -c meshfs -n '__meshfs_after -o' -x -a 'nonempty writeback writethrough noatime debug allow_other ro trash= trash-share= acks= acks-timeout= acks-wait acks-on-close http= http-public metrics-open'
complete -c meshfs -n '__meshfs_arg_of umount unmount members remove migrate top' -x -a '(__meshfs_mounts)'
complete -c meshfs -n '__meshfs_arg_of mount' -x -a '(__fish_complete_directories)'
complete -c meshfs -n '__meshfs_arg_of stat sync trash restore' -F
