#!/bin/bash
# Removes everything a one-node cluster (test/support/cluster.ts) left behind, given its state
# directory: its processes, the containers' processes and cgroups, every mount under the
# directory (container root filesystems, pod volumes, network namespaces), the iptables chains
# that appeared while it ran, the bridge, the sysctl it changed, and the directory itself.
# Idempotent; run by the harness after a clean stop, by its watchdog when the harness process
# dies, and by `make cluster-down`. Every process it kills is one the cluster started, found by
# the pids it recorded, the shims' pid files and the pods' cgroups, never by name.
set -u
dir=${1:?usage: cluster-cleanup.sh STATE_DIR}
bridge=${2:-promshard0}
case "$dir" in /*/promshard-cluster-*) ;; *) echo "cluster-cleanup: refusing $dir (not a cluster state dir)" >&2; exit 2 ;; esac

# Processes: each component leads its own process group.
for p in $(cat "$dir/pids" 2>/dev/null); do kill -KILL -- "-$p" 2>/dev/null; done
# containerd's shims run detached from it (their own session): each is told this cluster's
# containerd socket (-address <dir>/containerd.sock), which names no other process.
for cmdline in /proc/[0-9]*/cmdline; do
  if { tr '\0' ' ' <"$cmdline"; } 2>/dev/null | grep -qF -- "-address $dir/containerd.sock"; then
    p=${cmdline#/proc/}; kill -KILL "${p%/cmdline}" 2>/dev/null
  fi
done
# The containers' first processes, by their pid files.
for f in "$dir"/containerd/state/io.containerd.runtime.v2.task/*/*/init.pid; do
  [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
done
# The containers' processes: whatever is left in the kubelet's pod cgroups (one tree per v1
# hierarchy, or in the unified one).
kubepods=$(ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods 2>/dev/null)
for attempt in 1 2 3 4 5; do
  pids=$(for k in $kubepods; do find "$k" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -u)
  [ -z "$pids" ] && break
  kill -KILL $pids 2>/dev/null
  sleep 0.2
done
for k in $kubepods; do find "$k" -depth -type d -exec rmdir {} \; 2>/dev/null; done

# Mounts under the directory, deepest first (overlay root filesystems, shm, volumes, netns).
for attempt in 1 2 3; do
  mounts=$(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
  [ -z "$mounts" ] && break
  for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
done

# iptables: the KUBE-* and CNI-* chains (kube-proxy, kubelet, portmap) and PROMSHARD-FORWARD that
# were not there before the cluster started; first the rules of other chains that jump to them.
# Without the list taken at start (the cluster never got that far), no chain is known to be ours.
[ -f "$dir/iptables-chains-before" ] && before=$(cat "$dir/iptables-chains-before") && for cmd in iptables ip6tables; do
  command -v $cmd-save >/dev/null || continue
  for table in filter nat mangle raw; do
    ours=$($cmd-save -t $table 2>/dev/null | sed -n 's/^:\(\(KUBE\|CNI\|PROMSHARD\)-[^ ]*\) .*/\1/p' | while read -r c; do
      grep -qx "$cmd $table $c" <<<"$before" || echo "$c"
    done)
    [ -z "$ours" ] && continue
    pattern=$(echo $ours | tr ' ' '|')
    $cmd-save -t $table | grep -E "^-A [A-Z]+ .*-j ($pattern)( |$)" | grep -Ev "^-A ($pattern) " | while read -r rule; do
      eval "$cmd -t $table -D ${rule#-A }" 2>/dev/null
    done
    for c in $ours; do $cmd -t $table -F "$c" 2>/dev/null; done
    for c in $ours; do $cmd -t $table -X "$c" 2>/dev/null; done
  done
done

# The bridge (its address and the service route go with it) and the sysctl set for it.
ip link del "$bridge" 2>/dev/null
if [ -f "$dir/sysctl-before" ]; then
  while read -r key value; do sysctl -qw "$key=$value" 2>/dev/null; done <"$dir/sysctl-before"
fi

rm -rf --one-file-system "$dir"
exit 0
