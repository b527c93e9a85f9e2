// Package trace records which capabilities the processes of a container
// exercise: for every capability check the kernel makes on behalf of a
// task in a watched cgroup (v2), whether it succeeded (the capability was
// used) or was refused.
//
// The recorder is a BPF program on the raw tracepoint cap_capable, which
// the kernel fires at the end of every capability check with the
// capability and the result. Capshim has no daemon: every runtime call is
// a short-lived process. So the program, its link and its maps are pinned
// in bpffs (DefaultDir) and outlive the process that loaded them; a later
// process finds them there. The life of one container is
//
//	Attach, Watch(cgroup)            at the container's start
//	Open, Harvest(cgroup), Release   at its delete
//
// Each watched cgroup has an entry in a hash map keyed by its id, which
// says what is watched, and, unless another watched cgroup holds it, a
// slot in an array indexed by the low bits of its id, where the program
// counts the checks of the cgroup's own tasks: an array element is found
// without the hash's call and cache lines, which a watched check otherwise
// spends most of its time on. Harvest adds the two up.
//
// Reclaim drops entries of cgroups that are gone without a Harvest
// (a container deleted by something other than capshim). While the program
// is attached, every capability check on the host pays for it (a few tens
// of nanoseconds when nothing is watched), so Release detaches it as soon
// as no cgroup is watched any more.
//
// Not every check is a need of the workload, and the program sorts out
// four kinds before counting:
//
//   - checks the kernel makes for the task with credentials other than
//     the task's own (task_struct.real_cred): overlayfs, the root file
//     system of containers, copies files up and writes its work
//     directory with the credentials of its mounter, which hold
//     SYS_ADMIN, DAC_OVERRIDE and more that the container never had
//     (Record.Foreign). access(2) puts credentials of its own in place
//     too, when the task's file system ids differ from its real ones or
//     its effective capabilities are not what the real-id check assumes
//     (root with effective unlike permitted, others with any); those
//     checks are left out with the rest. Where the kernel has no BTF to
//     locate real_cred, everything is counted and every record says so.
//   - CAP_SYS_ADMIN checks made by the memory-overcommit accounting
//     (security_vm_enough_memory_mm) at every fork, mmap and brk: they only
//     tune the overcommit heuristic, and would otherwise mark SYS_ADMIN
//     used by every container that has it. The program recognises them by
//     their kernel call stack (Record.Overcommit counts them).
//   - checks made by the OCI runtime's own init process (runc:[2:INIT],
//     crun) while it sets the container up, recognised by the task's
//     command name (Record.Runtime).
//   - a CAP_DAC_READ_SEARCH refusal that the kernel follows at once with a
//     successful CAP_DAC_OVERRIDE check for the same access: the permission
//     code tries the narrower capability first and the wider one next, so
//     the refusal cost the workload nothing (Record.Fallback).
//
// Tracing is observability: Supported says why it cannot work on a host,
// and callers are expected to carry on without it.
package trace
