# bash completion for meshfs(1) and mount.meshfs(8)
# (installed as /usr/share/bash-completion/completions/meshfs)

# the mount points of meshfs mounts (from /proc/mounts, \040 etc. unescaped)
_meshfs_mounts()
{
    local src mnt type rest
    while IFS=$' \t' read -r src mnt type rest; do
        [[ $type == fuse.meshfs ]] && printf '%b\n' "$mnt"
    done </proc/mounts 2>/dev/null
}

_meshfs()
{
    local cur prev words cword
    _init_completion -n = || return
    local cmds="init mount umount unmount stat sync top invite join members remove migrate trash restore help version"
    if ((cword == 1)); then
        COMPREPLY=($(compgen -W "$cmds --help --version" -- "$cur"))
        return
    fi
    local cmd=${words[1]} flags=""
    case $prev in
    --store)
        _filedir -d
        return
        ;;
    --listen | --peer | --acks | --acks-timeout | --timeout | --peers | \
        --expires | --uses | --revoke | --version | --as | --count | --http)
        return
        ;;
    -o)
        COMPREPLY=($(compgen -W "nonempty writeback writethrough noatime debug allow_other ro trash= trash-share= acks= acks-timeout= acks-wait acks-on-close http= http-public metrics-open" -- "$cur"))
        [[ ${COMPREPLY[0]-} == *= ]] && compopt -o nospace
        return
        ;;
    esac
    case $cmd in
    init) flags="--store" ;;
    mount) flags="--store --listen --peer --acks --acks-timeout --acks-wait --http --http-public --metrics-open -f -o" ;;
    umount | unmount) ;;
    stat) flags="--store --json --watch --url" ;;
    sync) flags="--peers --all --timeout" ;;
    top) flags="--store --count" ;;
    invite) flags="--store --expires --uses --list --revoke" ;;
    join) flags="--store" ;;
    members) flags="--store --json" ;;
    remove) flags="--store" ;;
    migrate) flags="--store" ;;
    trash) flags="--json" ;;
    restore) flags="--version --as" ;;
    help)
        COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
        return
        ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags --help" -- "$cur"))
        return
    fi
    case $cmd in
    umount | unmount | members | remove | migrate | top)
        local IFS=$'\n'
        COMPREPLY=($(compgen -W "$(_meshfs_mounts)" -- "$cur"))
        ;;
    mount) _filedir -d ;;
    stat | sync | trash | restore) _filedir ;;
    esac
} && complete -F _meshfs meshfs

_mount_meshfs()
{
    local cur prev words cword
    _init_completion || return
    case $prev in
    -o)
        COMPREPLY=($(compgen -W "listen= peer= _netdev nofail acks= trash= http= nonempty noatime ro" -- "$cur"))
        [[ ${COMPREPLY[0]-} == *= ]] && compopt -o nospace
        return
        ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "-o -f -n -v -s -r" -- "$cur"))
        return
    fi
    _filedir -d
} && complete -F _mount_meshfs mount.meshfs
