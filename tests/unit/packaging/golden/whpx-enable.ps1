# Turn on Windows Hypervisor Platform for QEMU's WHPX accelerator; a restart completes it.
# Exit 0: enabled (restart pending or not); 1: it failed (the message says why).
$ErrorActionPreference = 'Stop'
try {
    $result = Enable-WindowsOptionalFeature -Online -FeatureName HypervisorPlatform -All -NoRestart
} catch {
    Write-Output "enable failed: $($_.Exception.Message)"
    exit 1
}
Write-Output "restart needed: $($result.RestartNeeded)"
exit 0
