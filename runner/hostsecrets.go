package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/migrun/migrun/plan"
)

// hostSecrets reads the secrets that live in a file on a plan host
// (secrets: {host, file, key}) and that a step about to run uses (running:
// the steps and on_failure steps whose when: holds). A secret only a
// skipped step uses is never read, so a Manager without a DWH is not asked
// for the DWH's password. The values join r.secrets, which redacts them
// from everything shown or recorded.
func (r *Runner) hostSecrets(ctx context.Context, hosts *pool, running []plan.Step) error {
	var errs []error
	for _, name := range plan.SecretsUsedBy(running) {
		src := r.plan.Secrets[name]
		if src.Host == "" || r.secrets[name] != "" {
			continue
		}
		ex, err := hosts.get(ctx, src.Host)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %s: %w", name, err))
			continue
		}
		b, err := ex.ReadFile(ctx, src.File)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %s: read %s:%s: %w", name, src.Host, src.File, err))
			continue
		}
		v, err := plan.SecretFromText(string(b), src.Key, src.Host+":"+src.File)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %s: %w", name, err))
			continue
		}
		r.secrets[name] = v
	}
	return errors.Join(errs...)
}
