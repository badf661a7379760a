package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ServerResult counts what the API server accepted, by entry point.
type ServerResult struct {
	Validated map[string]int
}

// Server validates every rendered object on a real kube-apiserver: it creates
// the namespaces the manifests declare (and the external ones), then
// server-side dry-run creates every other object with strict field
// validation, so unknown fields, broken selectors, invalid values, missing
// namespaces and kinds without a CRD are all errors that name the object.
func Server(ctx context.Context, cfg *rest.Config, c *Config, r *Rendered) (ServerResult, []Finding) {
	res := ServerResult{Validated: map[string]int{}}
	cl, err := client.New(cfg, client.Options{})
	if err != nil {
		return res, []Finding{{Where: "kube-apiserver", Message: "client: " + err.Error()}}
	}
	var fs []Finding
	ensureNamespace := func(name string) error {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := cl.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	}
	for _, ns := range c.ExternalNamespaces {
		if err := ensureNamespace(ns); err != nil {
			fs = append(fs, Finding{Where: "kube-apiserver", Object: "Namespace/" + ns, Message: err.Error()})
		}
	}
	// Namespaces first, for real: the dry-run creates below need them.
	for _, where := range r.Order {
		for _, o := range r.Objects[where] {
			if o.GetKind() != "Namespace" || o.GetAPIVersion() != "v1" {
				continue
			}
			obj := o.DeepCopy()
			if err := cl.Create(ctx, obj, client.FieldValidation(metav1.FieldValidationStrict)); err != nil && !apierrors.IsAlreadyExists(err) {
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: describe(err)})
				continue
			}
			res.Validated[where]++
		}
	}
	for _, where := range r.Order {
		for _, o := range r.Objects[where] {
			if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
				continue
			}
			obj := o.DeepCopy()
			obj.SetResourceVersion("")
			err := cl.Create(ctx, obj, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
			if err != nil {
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: describe(err)})
				continue
			}
			res.Validated[where]++
		}
	}
	return res, fs
}

// describe makes API errors readable: the server's causes, one per line.
func describe(err error) string {
	if meta.IsNoMatchError(err) {
		return "unknown kind: no CRD for it is installed in the test API server (" + err.Error() + "); add its CRD module to tools/crds"
	}
	var status apierrors.APIStatus
	if s, ok := err.(apierrors.APIStatus); ok {
		status = s
	}
	if status == nil {
		return err.Error()
	}
	st := status.Status()
	msg := st.Message
	if apierrors.IsNotFound(err) && st.Details != nil && st.Details.Kind == "namespaces" {
		msg = fmt.Sprintf("namespace %q does not exist: declare it in this entry point or list it in externalNamespaces", st.Details.Name)
	}
	if st.Details != nil && len(st.Details.Causes) > 0 {
		var causes []string
		for _, cause := range st.Details.Causes {
			c := cause.Message
			if cause.Field != "" && !strings.Contains(c, cause.Field) {
				c = cause.Field + ": " + c
			}
			if !slices.Contains(causes, c) {
				causes = append(causes, c)
			}
		}
		msg = strings.Join(causes, "; ")
	}
	return fmt.Sprintf("rejected by kube-apiserver (%s): %s", st.Reason, msg)
}
