# Exit 0: Windows Hypervisor Platform is enabled; 1: it is not; 2: the check failed.
# Run elevated (Get-WindowsOptionalFeature -Online needs it); the installer is.
$ErrorActionPreference = 'Stop'
try {
    $feature = Get-WindowsOptionalFeature -Online -FeatureName HypervisorPlatform
} catch {
    Write-Output "check failed: $($_.Exception.Message)"
    exit 2
}
Write-Output "HypervisorPlatform: $($feature.State)"
if ($feature.State -eq 'Enabled') { exit 0 }
exit 1
