/**
 * A product in the panel: machine, node limit, and every feature marked supported or not.
 */
import * as React from 'react';

import {
  describeMaxNodes,
  describeResources,
  FEATURE_LABEL,
  FEATURES,
  IProductInfo
} from './model';

export function ProductCard(props: { product: IProductInfo }): JSX.Element {
  const info = props.product;
  const { product, reference, features } = info;
  const limits = [describeResources(product), describeMaxNodes(info)].filter(
    Boolean
  );
  return (
    <li
      className="jp-UCloud-product"
      data-product={reference.id}
      data-provider={reference.provider}
    >
      <div className="jp-UCloud-product-head">
        <span className="jp-UCloud-product-name" title={product.name}>
          {product.name}
        </span>
        <span className="jp-UCloud-product-provider">{reference.provider}</span>
      </div>
      <div className="jp-UCloud-product-resources" title={product.description}>
        {limits.join(' · ')}
      </div>
      <div className="jp-UCloud-features">
        {FEATURES.map(feature =>
          features.has(feature) ? (
            <span
              key={feature}
              className="jp-UCloud-feature"
              data-feature={feature}
              title={`Supports ${FEATURE_LABEL[feature]}`}
            >
              {FEATURE_LABEL[feature]}
            </span>
          ) : (
            <span
              key={feature}
              className="jp-UCloud-feature jp-mod-absent"
              data-feature-absent={feature}
              title={`No ${FEATURE_LABEL[feature]}`}
              aria-label={`no ${FEATURE_LABEL[feature]}`}
            >
              {FEATURE_LABEL[feature]}
            </span>
          )
        )}
      </div>
    </li>
  );
}
