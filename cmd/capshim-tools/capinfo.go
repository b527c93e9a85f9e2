package main

import "github.com/capshim/capshim/capability"

// Risk ratings of a capability, from worst to mildest. The scale follows
// Brad Spengler's 2011 grsecurity analysis "False Boundaries and Arbitrary
// Code Execution", extended to the capabilities Linux added since:
//
//   - root-equivalent: there is a known, general way to turn the capability
//     into full root (every capability) or into code running in the kernel.
//   - high: no general path to full root, but the capability reaches past
//     the container (host-wide state, a large kernel attack surface, or a
//     denial of service of the whole host), or the paper calls it "very
//     likely" root-equivalent.
//   - low: its effects stay inside the container or are a minor nuisance.
const (
	// riskRootEquivalent marks a capability that amounts to full root.
	riskRootEquivalent = "root-equivalent"
	// riskHigh marks a capability that reaches past the container.
	riskHigh = "high"
	// riskLow marks a capability whose effects stay small and local.
	riskLow = "low"
)

// capInfo describes one capability for `capshim caps`.
type capInfo struct {
	// Risk is riskRootEquivalent, riskHigh or riskLow.
	Risk string
	// Allows says in one short line what the capability allows.
	Allows string
	// Detail explains in a few sentences what it allows, why it is risky
	// in a container and which workloads typically need it.
	Detail string
}

// capInfos describes every capability, indexed by capability number in the
// order of package capability (0 is CAP_CHOWN, 40 is CAP_CHECKPOINT_RESTORE). It
// is a fixed array, so it costs nothing at program start.
var capInfos = [capability.NumCaps]capInfo{
	// 0 CAP_CHOWN
	{
		Risk:   riskRootEquivalent,
		Allows: "give any file a new owner or group",
		Detail: "The process may chown any file it can reach, whoever owns it. " +
			"Taking ownership of a sensitive file (a password database, a script " +
			"that root runs) lets it change the mode and then rewrite the file, " +
			"which is why Spengler rates it root-equivalent. Entrypoints that fix " +
			"up file ownership at start use it; setting ownership when the image " +
			"is built removes the need.",
	},
	// 1 CAP_DAC_OVERRIDE
	{
		Risk:   riskRootEquivalent,
		Allows: "ignore read, write and execute permissions on files",
		Detail: "The process skips the owner, group and other permission bits " +
			"on files and directories, so it can read secrets and modify any " +
			"file on a writable mount, such as the password files or programs " +
			"that root later runs. Images that run as root but work on files " +
			"belonging to other users rely on it; running as the owning user " +
			"removes the need.",
	},
	// 2 CAP_DAC_READ_SEARCH
	{
		Risk:   riskRootEquivalent,
		Allows: "read any file, list any directory, open files by handle",
		Detail: "Besides skipping read and search permission checks, it allows " +
			"open_by_handle_at(2), which opens a file from an opaque handle " +
			"without walking a path. The 2014 \"shocker\" exploit used that to " +
			"open files of the host's file system from inside a Docker container, " +
			"and Docker dropped the capability from its default as a result. " +
			"Backup tools and user-space file servers need it.",
	},
	// 3 CAP_FOWNER
	{
		Risk:   riskRootEquivalent,
		Allows: "act as the owner of any file (mode, ACLs, times, xattrs)",
		Detail: "Checks that require the caller to own the file are skipped: " +
			"chmod, ACLs, timestamps, extended attributes, and deleting other " +
			"users' files in sticky directories such as /tmp. Making a sensitive " +
			"file world-writable is one chmod away, hence the root-equivalent " +
			"rating. Images that change the modes of files they do not own at " +
			"start need it.",
	},
	// 4 CAP_FSETID
	{
		Risk:   riskRootEquivalent,
		Allows: "keep setuid and setgid bits when a file is modified",
		Detail: "Normally the kernel clears the set-user-ID and set-group-ID " +
			"bits of a file that is written to or truncated, and " +
			"refuses a setgid bit for a group the caller is not in. With this " +
			"capability those bits stay, so the process can plant or preserve a " +
			"privileged setuid or setgid program. Copying files with their modes " +
			"intact is the usual reason it is granted; services rarely need it.",
	},
	// 5 CAP_KILL
	{
		Risk:   riskHigh,
		Allows: "send signals to processes of any user",
		Detail: "The user-ID check on kill(2) is skipped, so the process can " +
			"stop or kill any process it can see, and use the KDSIGACCEPT " +
			"terminal ioctl. Spengler rates it \"very likely\" root-equivalent, " +
			"because signalling a privileged process at the wrong moment can " +
			"break its assumptions; capshim rates it high since a private PID " +
			"namespace limits it to the container. Supervisors and init " +
			"processes that manage workers of other users need it.",
	},
	// 6 CAP_SETGID
	{
		Risk:   riskRootEquivalent,
		Allows: "switch to any group IDs and forge GIDs on UNIX sockets",
		Detail: "The process may set any real, effective and supplementary " +
			"group IDs and claim any GID in credentials sent over UNIX sockets. " +
			"Joining a group such as shadow, disk or docker gives access to " +
			"whatever that group owns. Daemons that start as root and drop to " +
			"another user (sshd, su, web servers) use it; starting the container " +
			"as the target user avoids it.",
	},
	// 7 CAP_SETUID
	{
		Risk:   riskRootEquivalent,
		Allows: "switch to any user IDs and forge UIDs on UNIX sockets",
		Detail: "The process may take any user ID, including 0: as UID 0 it owns " +
			"most system files and regains its bounding set's capabilities at " +
			"the next exec. It can also claim any UID over UNIX sockets. It is " +
			"needed by the same privilege-dropping programs as CAP_SETGID (su, " +
			"sudo, sshd). Images that can run as a fixed non-root user do not " +
			"need it.",
	},
	// 8 CAP_SETPCAP
	{
		Risk:   riskRootEquivalent,
		Allows: "manage capability sets: inheritable, bounding, securebits",
		Detail: "It lets a process add any capability from its bounding set to " +
			"its inheritable set, drop capabilities from the bounding set and " +
			"change its securebits. On kernels without file capabilities it " +
			"could grant capabilities to other processes, the basis of " +
			"Spengler's root-equivalent rating. Programs that shed their own " +
			"capabilities precisely need it; most workloads never do.",
	},
	// 9 CAP_LINUX_IMMUTABLE
	{
		Risk:   riskLow,
		Allows: "set or clear the immutable and append-only file flags",
		Detail: "The process may add or remove the immutable and append-only " +
			"attributes (chattr +i and +a). Removing them undoes a tamper " +
			"protection, such as append-only logs, but only on files the process " +
			"already owns or can act as owner of (CAP_FOWNER); capshim therefore " +
			"rates it low on its own. Almost no container workload needs it.",
	},
	// 10 CAP_NET_BIND_SERVICE
	{
		Risk:   riskLow,
		Allows: "listen on ports below 1024",
		Detail: "A process without root may bind TCP and UDP sockets to the " +
			"privileged ports, below net.ipv4.ip_unprivileged_port_start. In a " +
			"private network namespace it only concerns that namespace's ports, " +
			"and recent Docker versions set that sysctl to 0 so it is not even " +
			"needed there. Web servers and other services on well-known ports " +
			"use it.",
	},
	// 11 CAP_NET_BROADCAST
	{
		Risk:   riskLow,
		Allows: "nothing in practice (meant for broadcast and multicast)",
		Detail: "It was meant to guard socket broadcasting and listening to " +
			"multicast, but Linux practically never checks it: both work " +
			"without it. Granting it changes nothing, yet no workload needs it, " +
			"so it belongs in no policy.",
	},
	// 12 CAP_NET_ADMIN
	{
		Risk:   riskHigh,
		Allows: "configure interfaces, routes, firewall and traffic control",
		Detail: "Nearly all network configuration is behind it: interfaces, " +
			"addresses, routes, iptables and nftables rules, traffic shaping, " +
			"promiscuous mode and privileged socket options. Spengler rates it " +
			"\"very likely\" root-equivalent, and the netlink and netfilter code " +
			"it opens up has produced many kernel privilege escalations; with " +
			"the host network namespace it controls the host's network. VPN " +
			"clients, network plugins and routers need it.",
	},
	// 13 CAP_NET_RAW
	{
		Risk:   riskHigh,
		Allows: "use raw and packet sockets to craft and sniff traffic",
		Detail: "The process can open RAW and PACKET sockets, send arbitrary " +
			"packets and capture traffic on its interfaces, and bind to " +
			"non-local addresses. Spengler rates it \"very likely\" " +
			"root-equivalent; in containers it has enabled spoofing of neighbours " +
			"on a shared bridge (IPv6 router advertisements, CVE-2020-13401) and " +
			"packet-socket kernel exploits (CVE-2020-14386). Old ping and network " +
			"diagnostic tools need it; modern ping uses ICMP sockets instead.",
	},
	// 14 CAP_IPC_LOCK
	{
		Risk:   riskLow,
		Allows: "pin memory in RAM beyond the memlock limit; huge pages",
		Detail: "It lifts RLIMIT_MEMLOCK for mlock(2) and mlockall(2) and " +
			"allows huge-page shared memory. The danger is memory pressure, not " +
			"privilege, and locked pages still count against the container's " +
			"memory limit. Databases, programs keeping keys out of swap, and " +
			"DPDK or RDMA workloads use it.",
	},
	// 15 CAP_IPC_OWNER
	{
		Risk:   riskRootEquivalent,
		Allows: "ignore permissions on System V IPC objects",
		Detail: "Permission checks on System V shared memory, semaphores and " +
			"message queues are skipped, so the process can read and change the " +
			"shared state of other programs; Spengler rates it root-equivalent " +
			"because privileged services keep sensitive data there. A private " +
			"IPC namespace, the container default, limits it to the container's " +
			"own objects. Practically no workload needs it.",
	},
	// 16 CAP_SYS_MODULE
	{
		Risk:   riskRootEquivalent,
		Allows: "load and unload kernel modules",
		Detail: "A loaded module is arbitrary code in the host kernel, and " +
			"modules are not namespaced: this capability is a complete host " +
			"compromise with no container boundary left. Only agents that manage " +
			"host drivers need it, and they should run as trusted host services " +
			"rather than ordinary containers.",
	},
	// 17 CAP_SYS_RAWIO
	{
		Risk:   riskRootEquivalent,
		Allows: "raw hardware access: I/O ports, /dev/mem, raw SCSI and block",
		Detail: "It permits iopl(2) and ioperm(2), access to /dev/mem and " +
			"/dev/kmem, raw SCSI commands and low-level block device ioctls. " +
			"Given the device nodes, the process can read and write physical " +
			"memory and disks behind the kernel's back, past every container " +
			"boundary. Firmware, disk health and some GPU tools need it.",
	},
	// 18 CAP_SYS_CHROOT
	{
		Risk:   riskRootEquivalent,
		Allows: "use chroot(2) and enter mount namespaces with setns(2)",
		Detail: "With chroot a process can build a tree with its own /etc and " +
			"libraries, hard-link a setuid program into it and trick that program " +
			"into trusting its files, which is Spengler's root-equivalent " +
			"argument; it can also escape a plain chroot (not a container's " +
			"pivot_root). Build " +
			"tools and package scripts that chroot use it, which is why Docker " +
			"and Podman keep it; most services do not.",
	},
	// 19 CAP_SYS_PTRACE
	{
		Risk:   riskRootEquivalent,
		Allows: "trace and read or write the memory of any process",
		Detail: "The process may attach to any process it can see regardless " +
			"of owner, read and write its memory and registers, and pass some " +
			"/proc access checks. Injecting code into a more privileged process " +
			"takes over its privileges; with the host PID namespace that means " +
			"host processes, and before Linux 4.8 ptrace could also bypass " +
			"seccomp. Debuggers, strace and profilers need it.",
	},
	// 20 CAP_SYS_PACCT
	{
		Risk:   riskLow,
		Allows: "switch process accounting on or off",
		Detail: "It allows acct(2), which writes a record for every exiting " +
			"process to a file of the caller's choice. Accounting is kept per " +
			"PID namespace, so a container only records its own processes, and " +
			"the main risk is filling a disk, so capshim rates it low. Hardly any " +
			"container needs it.",
	},
	// 21 CAP_SYS_ADMIN
	{
		Risk:   riskRootEquivalent,
		Allows: "broad system administration: mounts, namespaces and more",
		Detail: "The catch-all capability: mounting file systems, setns and " +
			"unshare, quotas, swap, host name, keyrings, many device and file " +
			"system ioctls, and much more. It has well-known container escapes, " +
			"such as mounting a cgroup v1 hierarchy and abusing its release_agent, " +
			"and exposes a huge kernel attack surface: treat it as root on the " +
			"host. FUSE, nested containers and some system tools ask for it; " +
			"prefer a narrower capability or device where one exists.",
	},
	// 22 CAP_SYS_BOOT
	{
		Risk:   riskRootEquivalent,
		Allows: "reboot the machine and stage a new kernel with kexec",
		Detail: "In a private PID namespace reboot(2) only ends the container's " +
			"init, but kexec_load(2) is not namespaced: it stages a kernel of " +
			"the caller's choosing for the host's next kexec reboot, the basis " +
			"of Spengler's root-equivalent rating. Nothing running in a " +
			"container should need it.",
	},
	// 23 CAP_SYS_NICE
	{
		Risk:   riskHigh,
		Allows: "raise priorities, use real-time scheduling, pin CPUs",
		Detail: "The process may lower nice values, choose real-time scheduling " +
			"policies and set CPU affinity, memory policy and I/O priority of " +
			"any process it can see. A real-time busy loop is not held back by " +
			"the usual cgroup CPU limits and can starve the host's CPUs, so " +
			"capshim rates it high as a host-wide denial of service, not an " +
			"escalation. Latency-sensitive workloads such as audio or packet " +
			"processing need it.",
	},
	// 24 CAP_SYS_RESOURCE
	{
		Risk:   riskHigh,
		Allows: "exceed resource limits, quotas and reserved disk space",
		Detail: "It lets the process raise its hard resource limits, use the " +
			"blocks a file system reserves for root, ignore disk quotas, exceed " +
			"several kernel object limits and rewrite its memory map layout " +
			"with prctl(PR_SET_MM). Filling a shared file system's reserve can " +
			"make host services fail, so capshim rates it high as a host-wide " +
			"denial of service. Some databases raise their own limits with it.",
	},
	// 25 CAP_SYS_TIME
	{
		Risk:   riskHigh,
		Allows: "set the system and hardware clocks",
		Detail: "The system clock is shared by the whole host (time namespaces " +
			"only offset the monotonic and boot clocks), so a container that " +
			"sets it breaks certificate checks, Kerberos, log ordering and " +
			"time-based tokens for everything on the machine; capshim rates it " +
			"high for that reach. Only NTP and PTP daemons that keep the host's " +
			"time need it.",
	},
	// 26 CAP_SYS_TTY_CONFIG
	{
		Risk:   riskRootEquivalent,
		Allows: "hang up terminals and reconfigure virtual consoles",
		Detail: "It allows vhangup(2) and privileged ioctls on virtual " +
			"terminals, such as rewriting the keyboard map. Spengler rates it " +
			"root-equivalent: a rewritten keymap can make an administrator's " +
			"keystrokes at the console type the attacker's commands. Containers " +
			"normally have no virtual terminals, and nothing in them should " +
			"need it.",
	},
	// 27 CAP_MKNOD
	{
		Risk:   riskRootEquivalent,
		Allows: "create device nodes",
		Detail: "The process may create block and character device files with " +
			"mknod(2). A node for a host disk or for memory gives raw access to " +
			"it, and only the device cgroup filter stops a container from " +
			"opening such a node, so Spengler's root-equivalent rating holds " +
			"wherever that filter is missing or loose. Docker keeps it for " +
			"images that create nodes during setup; services seldom need it.",
	},
	// 28 CAP_LEASE
	{
		Risk:   riskLow,
		Allows: "take leases on files the process does not own",
		Detail: "It allows fcntl(F_SETLEASE) on any file the process can open, " +
			"not just its own. A lease lets the holder hold up other processes " +
			"that open or truncate the file for the lease-break time (45 seconds " +
			"by default), a minor denial of service. File servers such as Samba " +
			"use leases.",
	},
	// 29 CAP_AUDIT_WRITE
	{
		Risk:   riskLow,
		Allows: "send user-space records to the kernel audit log",
		Detail: "The process may submit user messages to the audit subsystem. " +
			"The audit log belongs to the host, so a container can flood it or " +
			"add misleading entries, but the kernel stamps each record with the " +
			"sender's identity and the capability changes no audit rule. Login " +
			"programs (sshd, login, su through PAM) need it, which is why every " +
			"common default set includes it.",
	},
	// 30 CAP_AUDIT_CONTROL
	{
		Risk:   riskRootEquivalent,
		Allows: "configure kernel auditing and change login UIDs",
		Detail: "It allows enabling, disabling and reconfiguring the kernel " +
			"audit subsystem and its rules, and changing a process's login UID " +
			"once set. Spengler rates it root-equivalent; at the least it blinds " +
			"the host's security monitoring. The kernel takes audit configuration " +
			"only from the initial PID namespace, so it matters most to " +
			"containers that share the host's; only audit daemons need it.",
	},
	// 31 CAP_SETFCAP
	{
		Risk:   riskRootEquivalent,
		Allows: "attach capabilities to executable files",
		Detail: "The process may set file capabilities (the security.capability " +
			"attribute). A program marked with a capability gains it whenever it " +
			"runs, so any capability left in the bounding set can be regained by " +
			"a process that dropped it; since Linux 5.12 it is also what allows " +
			"mapping root into a new user namespace. Image build steps that run " +
			"setcap need it; running services do not.",
	},
	// 32 CAP_MAC_OVERRIDE
	{
		Risk:   riskHigh,
		Allows: "bypass mandatory access control (Smack)",
		Detail: "It lets a process ignore the mandatory access control policy " +
			"of security modules that honour it; in mainline Linux that is Smack, " +
			"while SELinux and AppArmor do not use it. Where Smack confines " +
			"containers it removes that boundary, so capshim rates it high even " +
			"though the capability postdates Spengler's escalation list. Nothing " +
			"in a container should need it.",
	},
	// 33 CAP_MAC_ADMIN
	{
		Risk:   riskHigh,
		Allows: "change mandatory access control policy and labels",
		Detail: "It allows configuring security modules: loading or replacing " +
			"AppArmor profiles, changing Smack rules, and setting SELinux labels " +
			"the policy does not know. Replacing the profile that confines this " +
			"or another container lifts that confinement, so capshim rates it " +
			"high. Only policy management tools need it.",
	},
	// 34 CAP_SYSLOG
	{
		Risk:   riskHigh,
		Allows: "read and clear the kernel log; see kernel addresses",
		Detail: "It allows the privileged syslog(2) operations, such as reading " +
			"the kernel log when dmesg_restrict is set, clearing it and changing " +
			"the console level, and it shows kernel pointers in /proc when " +
			"kptr_restrict is 1. The kernel log is shared by the whole host and " +
			"kernel addresses help defeat KASLR in an exploit, so capshim rates " +
			"it high. Log collectors that read dmesg need it.",
	},
	// 35 CAP_WAKE_ALARM
	{
		Risk:   riskLow,
		Allows: "set timers that wake the machine from suspend",
		Detail: "It allows the CLOCK_REALTIME_ALARM and CLOCK_BOOTTIME_ALARM " +
			"timers, which wake a suspended system. Added in Linux 3.0, after " +
			"Spengler's analysis, it is rated low: the worst it does is wake a " +
			"machine that should sleep, which servers never do. Only power " +
			"management on laptops and phones needs it.",
	},
	// 36 CAP_BLOCK_SUSPEND
	{
		Risk:   riskLow,
		Allows: "keep the machine from suspending",
		Detail: "It allows wake locks (EPOLLWAKEUP, /sys/power/wake_lock) that " +
			"keep the system awake. Added in Linux 3.5, after Spengler's " +
			"analysis, it is rated low: at worst it drains the battery of a " +
			"device that would otherwise sleep, and servers do not suspend. " +
			"Android-style power management needs it.",
	},
	// 37 CAP_AUDIT_READ
	{
		Risk:   riskHigh,
		Allows: "receive the kernel audit stream over netlink",
		Detail: "It lets the process subscribe to the audit multicast netlink " +
			"group and read audit events as the kernel emits them. It changes " +
			"nothing, but the stream covers the whole host and can include the " +
			"command lines and file accesses of other users and containers, so " +
			"capshim rates this Linux 3.16 addition high. Journald and security " +
			"agents that consume audit events need it.",
	},
	// 38 CAP_PERFMON
	{
		Risk:   riskHigh,
		Allows: "use performance monitoring and tracing system-wide",
		Detail: "Split from CAP_SYS_ADMIN in Linux 5.8, it allows system-wide and " +
			"kernel profiling with perf_event_open(2) whatever perf_event_paranoid " +
			"says, exposing the activity of the host, other containers and " +
			"kernel addresses. " +
			"Together with CAP_BPF it lets tracing programs read kernel memory, " +
			"which is root-equivalent; alone capshim rates it high. Profilers " +
			"and observability agents need it.",
	},
	// 39 CAP_BPF
	{
		Risk:   riskRootEquivalent,
		Allows: "load BPF programs and create BPF maps",
		Detail: "Split from CAP_SYS_ADMIN in Linux 5.8, it allows most bpf(2) " +
			"operations. Combined with CAP_PERFMON or CAP_NET_ADMIN the programs " +
			"can read kernel memory or rewrite network traffic, and on its own it " +
			"exposes the BPF verifier, whose bugs have repeatedly given kernel " +
			"code execution, so capshim rates it root-equivalent. Observability, " +
			"networking and security agents built on eBPF need it.",
	},
	// 40 CAP_CHECKPOINT_RESTORE
	{
		Risk:   riskHigh,
		Allows: "choose PIDs and read other processes' mapped files (CRIU)",
		Detail: "Added in Linux 5.9 for checkpoint and restore, it allows " +
			"writing ns_last_pid, choosing the PIDs of a new process with " +
			"clone3(2) and reading /proc/PID/map_files of other processes. " +
			"Without a user namespace that includes a new process's PID in the " +
			"host's PID namespace, which enables PID-reuse tricks against host " +
			"tools, so " +
			"capshim rates it high. Only CRIU and similar tools need it.",
	},
}
