package k8scluster

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// Objects reads and applies objects of any kind (manifests, CRDs and
// their custom resources) as the admin, finding their resources through
// discovery. Kinds added after it was made (a CRD just applied) are found
// too: the discovery cache is refreshed when a kind is unknown.
type Objects struct {
	mapper *restmapper.DeferredDiscoveryRESTMapper
	dyn    dynamic.Interface
}

// Objects returns an Objects for the cluster.
func (c *Cluster) Objects() (*Objects, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(c.AdminConfig())
	if err != nil {
		return nil, fmt.Errorf("k8scluster: discovery client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(c.AdminConfig())
	if err != nil {
		return nil, fmt.Errorf("k8scluster: dynamic client: %w", err)
	}
	return &Objects{mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), dyn: dyn}, nil
}

func (o *Objects) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	m, err := o.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		o.mapper.Reset()
		m, err = o.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gvk, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return o.dyn.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
	}
	return o.dyn.Resource(m.Resource), nil
}

// Get reads obj's current state from the server.
func (o *Objects) Get(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := o.resource(obj)
	if err != nil {
		return nil, err
	}
	return ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
}

// Apply server-side applies obj (as kubectl apply --server-side
// --validate=strict: an unknown or duplicate field is an error) and
// returns what the server made of it; with dryRun nothing is stored.
func (o *Objects) Apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	ri, err := o.resource(obj)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	opts := metav1.PatchOptions{FieldManager: "k8scluster-test", Force: new(true), FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
}
